"""The README and docs/ are a contract: the paths and links they name exist, every page of
docs/ is one click from the README, the parameter counts of the configs table are the
configs', and every measured number they quote comes from the results file a benchmark script
writes.

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
# Every page a user reads: the README, CONTRIBUTING.md and docs/ (benchmarks/ has its own test).
PAGES = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").rglob("*.md"))]
TEXTS = {page.relative_to(REPO).as_posix(): page.read_text() for page in PAGES}
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
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


BLOCKS = [
    (name, files, block) for name, text in TEXTS.items() for files, block in MARKER.findall(text)
]


def test_measured_numbers_are_marked_with_their_results_files():
    assert len(BLOCKS) >= 6
    for _, files, _ in BLOCKS:
        for name in files.split():
            assert (REPO / name).is_file(), name


@pytest.mark.parametrize(
    ("page", "files", "block"),
    BLOCKS,
    ids=[f"{p}:{f.split()[0]}:{i}" for i, (p, f, _) in enumerate(BLOCKS)],
)
def test_every_quoted_measurement_is_in_its_results_file(page, files, block):
    values = [v for name in files.split() for v in leaves(json.loads((REPO / name).read_text()))]
    missing = [t + ("%" if p else "") for t, p in quoted(block) if not matches(t, p, values)]
    assert not missing, f"not in {files}: {missing}"


@pytest.mark.parametrize("page", ["README.md", "HISTORY.md"])
def test_paths_named_in_the_benchmarks_pages_exist(page):
    text = (REPO / "benchmarks" / page).read_text()
    named = set(
        re.findall(r"(?<![/\w])((?:configs|docs|benchmarks|data|results)/[\w./-]*\w)", text)
    )
    here = [REPO, REPO / "benchmarks"]  # results/... is relative to benchmarks/
    absent = sorted(p for p in named if not any((root / p).exists() for root in here))
    assert not absent, absent


@pytest.mark.parametrize("page", TEXTS)
def test_paths_named_in_every_page_exist(page):
    named = set(
        re.findall(r"(?<![/\w])((?:configs|docs|benchmarks|data|tests)/[\w./-]*\w)", TEXTS[page])
    )
    examples = ("data/mine/",)  # a user's folder in an example error message
    absent = sorted(p for p in named if not (REPO / p).exists() and not p.startswith(examples))
    assert not absent, absent


@pytest.mark.parametrize("page", TEXTS)
def test_links_of_every_page_lead_to_files(page):
    here = (REPO / page).parent
    links = [link for link in LINK.findall(TEXTS[page]) if not re.match(r"\w+:", link)]
    absent = sorted(link for link in links if not (here / link).exists())
    assert not absent, absent


def test_every_page_of_docs_is_one_click_from_the_readme():
    linked = {(REPO / link).resolve() for link in LINK.findall(README)}
    pages = {page.resolve() for page in PAGES if page.name != "README.md"}
    assert not sorted(str(p) for p in pages - linked)


def test_the_readme_is_a_front_door():
    assert len(README.splitlines()) <= 250


def test_the_configs_table_gives_each_model_size_on_the_demo_data():
    from cmap.cli import build

    rows = re.findall(
        r"^\| `(?:--model )?(?:models/)?([\w]+)\.yaml`[^|]*\| ([\d.]+) M \|$",
        TEXTS["docs/reference/configs.md"],
        re.M,
    )
    assert len(rows) == 6
    for name, millions in rows:
        args = ["--config", str(REPO / "configs" / "demo.yaml"), "--trainer.logger", "false"]
        if name != "demo":
            args += ["--model", str(REPO / "configs" / "models" / f"{name}.yaml")]
        model = build(args).model
        count = sum(p.numel() for p in model.parameters())
        assert f"{count / 1e6:.2g}" == millions, (name, count)


def test_the_kinds_table_is_what_each_kind_declares():
    import cmap.models.base as kinds

    text = TEXTS["docs/reference/model-blocks.md"]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]*) \| [^|]* \|$", text, re.M)
    assert rows
    for name, declared in rows:
        kind = getattr(kinds, name)
        assert set(re.findall(r"`(\w+)`", declared)) == set(kind.contract), name


def yaml_arguments(cls) -> list[str]:
    """The arguments YAML gives a class, in order (a task's `**options` resolved)."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(cls, "block", fail_untyped=False)
    return list(vars(parser.get_defaults()["block"]))


def test_the_blocks_table_names_each_block_with_its_arguments():
    import cmap.models
    import cmap.tasks

    text = TEXTS["docs/reference/model-blocks.md"]
    rows = dict(re.findall(r"^\| `(\w+)\(([^)]*)\)`", text, re.M))
    blocks = [n for n in cmap.models.__all__ if not hasattr(cmap.models.base, n)]
    assert not [n for n in blocks if n not in rows and n not in ("NTXent", "BarlowTwins")]
    for name, listed in rows.items():
        cls = getattr(cmap.models, name, None) or getattr(cmap.tasks, name)
        params = yaml_arguments(cls)
        names = [a.strip() for a in listed.split(",") if a.strip() not in ("…", "...")]
        if "…" in listed:  # the main arguments, the others in the class's docstring
            assert set(names) <= set(params), name
        else:
            assert names == params, name
