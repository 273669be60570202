"""The README is a contract: the paths it names exist, the parameter counts of its configs
table are the configs', and every measured number it quotes comes from the results file a
benchmark script writes.

A block of measured numbers (a table or a paragraph, up to the next blank line) is preceded
by `<!-- numbers: benchmarks/results/NAME.json ... -->`; each decimal, percentage and
grouped thousand in it (outside `code`) must be a value of those files as shown (same
decimals; a percentage also as a share; a rounded count to its significant digits).
"""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import REPO

README = (REPO / "README.md").read_text()
MARKER = re.compile(r"<!-- numbers: ([^>]+?) -->\n(.*?)(?:\n\n|\Z)", re.S)
NUMBER = re.compile(r"(\d{1,3}(?: \d{3})+|\d+\.\d+|\d+)( ?%)?")


def leaves(value) -> list[float]:
    """Every number in a JSON document."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [x for item in value for x in leaves(item)]
    return []


def quoted(text: str) -> list[tuple[str, bool]]:
    """(number, is a percentage) of a block, leaving out `code`, 1-2-digit counts and
    numbers glued to words (T = 70 stays; d64, 2019, 40-date are not results)."""
    text = re.sub(r"`[^`]*`", " ", text)
    found = []
    for match in NUMBER.finditer(text):
        token, percent = match.group(1), bool(match.group(2))
        before, after = text[match.start() - 1 : match.start()], text[match.end() : match.end() + 1]
        if re.match(r"[\w\-/.]", before) or (not percent and re.match(r"[\w\-/²]", after)):
            continue
        if "." not in token and " " not in token and not percent:
            continue  # plain integers: counts, sizes and years, not measurements
        found.append((token, percent))
    return found


def matches(token: str, percent: bool, values: list[float]) -> bool:
    if " " in token:  # a rounded count: 7 000, 245 000
        number = float(token.replace(" ", ""))
        digits = len(token.replace(" ", "").rstrip("0"))
        return any(float(f"{abs(v):.{digits}g}") == number for v in values)
    decimals = len(token.split(".")[1]) if "." in token else 0
    candidates = [abs(v) for v in values]
    if percent:
        candidates += [abs(v) * 100 for v in values]
    half = 0.5 * 10.0**-decimals + 1e-9  # as shown, rounded either way at the half
    return any(abs(c - float(token)) <= half for c in candidates)


BLOCKS = MARKER.findall(README)


def test_measured_numbers_are_marked_with_their_results_files():
    assert len(BLOCKS) >= 6
    for files, _ in BLOCKS:
        for name in files.split():
            assert (REPO / name).is_file(), name


@pytest.mark.parametrize(
    ("files", "block"), BLOCKS, ids=[f"{f.split()[0]}:{i}" for i, (f, _) in enumerate(BLOCKS)]
)
def test_every_quoted_measurement_is_in_its_results_file(files, block):
    values = [v for name in files.split() for v in leaves(json.loads((REPO / name).read_text()))]
    missing = [t + ("%" if p else "") for t, p in quoted(block) if not matches(t, p, values)]
    assert not missing, f"not in {files}: {missing}"


def test_paths_named_in_the_benchmarks_readme_exist():
    text = (REPO / "benchmarks" / "README.md").read_text()
    named = set(
        re.findall(r"(?<![/\w])((?:configs|docs|benchmarks|data|results)/[\w./-]*\w)", text)
    )
    here = [REPO, REPO / "benchmarks"]  # results/... is relative to benchmarks/
    absent = sorted(p for p in named if not any((root / p).exists() for root in here))
    assert not absent, absent


def test_paths_named_in_the_readme_exist():
    named = set(
        re.findall(r"(?<![/\w])((?:configs|docs|benchmarks|data|tests)/[\w./-]*\w)", README)
    )
    examples = ("data/mine/",)  # a user's folder in an example error message
    absent = sorted(p for p in named if not (REPO / p).exists() and not p.startswith(examples))
    assert not absent, absent


def test_the_configs_table_gives_each_model_size_on_the_demo_data():
    from cmap.cli import build

    rows = re.findall(
        r"^\| `(?:--model )?(?:models/)?([\w]+)\.yaml`[^|]*\| ([\d.]+) M \|$", README, re.M
    )
    assert len(rows) == 6
    for name, millions in rows:
        args = ["--config", str(REPO / "configs" / "demo.yaml"), "--trainer.logger", "false"]
        if name != "demo":
            args += ["--model", str(REPO / "configs" / "models" / f"{name}.yaml")]
        model = build(args).model
        count = sum(p.numel() for p in model.parameters())
        assert f"{count / 1e6:.2g}" == millions, (name, count)
