"""A long-tailed copy of a samples folder, for measuring what keeps rare classes right.

    python benchmarks/imbalanced.py data/demo /tmp/demo_longtail --ratio 50 [--seed 0]

Classes are ranked by their number of series (most first); class r of K keeps
n_0 ratio^(-r / (K - 1)) of its series, n_0 those of the first (all of them): the last keeps
1/ratio as many as the first (or all it has, if fewer), drawn per series (a
row of labels.pq, seeded) in every split alike, so val and test are long-tailed too. The
other files of a split (features, temperatures, extras) keep the rows of the points that
still have a series; meta.yaml and the label mapping are copied.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from cmap.data.mapping import read_mapping


def longtail(root: Path, out: Path, ratio: float, seed: int) -> dict[str, int]:
    """Write the copy; returns the series kept per class (all splits)."""
    meta = yaml.safe_load((root / "meta.yaml").read_text())
    mapping = read_mapping(root / meta["label_mapping"]) if meta.get("label_mapping") else {}
    splits = [p.name for p in sorted(root.iterdir()) if (p / "labels.pq").exists()]
    labels = {s: pq.read_table(root / s / "labels.pq") for s in splits}
    classes = {
        s: np.array(
            [mapping.get(str(v), "other" if mapping else str(v)) for v in t["label"].to_pylist()]
        )  # fmt: skip
        for s, t in labels.items()
    }
    names, counts = np.unique(np.concatenate(list(classes.values())), return_counts=True)
    ranked = names[np.argsort(-counts, kind="stable")]
    top, k = counts.max(), max(len(ranked) - 1, 1)
    total = dict(zip(names, counts))
    keep_share = {c: min(1.0, top * ratio ** (-r / k) / total[c]) for r, c in enumerate(ranked)}
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True)
    kept: dict[str, int] = {}
    for split in splits:
        ids = np.array(labels[split]["poi_id"].to_pylist())
        draw = rng.random(len(ids))
        chosen = draw < np.array([keep_share[c] for c in classes[split]])
        for c in classes[split][chosen]:
            kept[c] = kept.get(c, 0) + 1
        wanted = pa.array(np.unique(ids[chosen]))
        (out / split).mkdir()
        pq.write_table(labels[split].filter(pa.array(chosen)), out / split / "labels.pq")
        for path in sorted((root / split).glob("*.pq")):
            if path.name != "labels.pq":
                table = pq.read_table(path)
                rows = pc.is_in(table["poi_id"], wanted)
                pq.write_table(table.filter(rows), out / split / path.name)
    for path in root.iterdir():
        if path.is_file():
            shutil.copy(path, out / path.name)
    return {c: kept.get(c, 0) for c in ranked}


def main(argv: list[str] | None = None) -> dict[str, int]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--ratio", type=float, default=50.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kept = longtail(args.root, args.out, args.ratio, args.seed)
    print("series kept per class: " + ", ".join(f"{c} {n}" for c, n in kept.items()))
    return kept


if __name__ == "__main__":
    main()
