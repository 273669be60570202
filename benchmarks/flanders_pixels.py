"""The Flanders pixels as one samples folder, for `accuracy.py` and `selection.py`.

    python benchmarks/flanders_pixels.py /tmp/flanders_pixels [--root PATH]
    python benchmarks/accuracy.py --root /tmp/flanders_pixels \
        --out benchmarks/results/accuracy_flanders.json

Every labelled pixel of the two patches that have both 10 m and 20 m Sentinel-2 bands
(0000280849BAC91C, season 2019; 00002806639B424A, season 2018), cut by `cmap samples` as the
walk-through (docs/tutorials/flanders.md) does (10 bands, SCL-masked, crop codes mapped by
`configs/flanders/labels.yaml`), each patch split 60/20/20 by parcel (seeded, stratified by
crop), then pooled split by split. Point ids are prefixed with their patch, so no two pixels
share one. The third patch has only 20 m bands and is left out (another band set). A
parcel's pixels are near copies of each other: the splits hold a few dozen parcels in all,
and test scores move by whole parcels.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from flanders import MAP, TRAIN, cut_samples

REPO = Path(__file__).resolve().parents[1]
PATCHES = {TRAIN: 2019, MAP: 2018}
SPLITS = ("train", "val", "test")


def prefixed(table: pa.Table, patch: str) -> pa.Table:
    """`table` with its poi_id prefixed by the patch (`<patch>:r<row>_c<col>`)."""
    ids = pc.binary_join_element_wise(pa.scalar(patch), table["poi_id"], ":")
    return table.set_column(table.schema.get_field_index("poi_id"), "poi_id", ids)


def pool(root: Path, out: Path, split: str) -> dict:
    """Write the pooled samples folder; returns the pixels per split and class code."""
    if out.exists():
        raise FileExistsError(f"{out} exists; give a new folder")
    with tempfile.TemporaryDirectory() as folder:
        cuts = {}
        for patch, year in PATCHES.items():
            cuts[patch] = Path(folder) / patch
            cut_samples(root, patch, cuts[patch], year, split)
        first = cuts[TRAIN]
        for name in SPLITS:
            (out / name).mkdir(parents=True)
            files = set.intersection(
                *({f.name for f in (c / name).glob("*.pq")} for c in cuts.values())
            )
            for file in sorted(files):
                tables = [prefixed(pq.read_table(c / name / file), p) for p, c in cuts.items()]
                pq.write_table(pa.concat_tables(tables), out / name / file)
        shutil.copy(first / "label_mapping.yaml", out / "label_mapping.yaml")
        meta = yaml.safe_load((first / "meta.yaml").read_text())
        for key in ("source_cube", "weather"):
            meta.pop(key, None)
        counts = {}
        for name in SPLITS:
            codes = pq.read_table(out / name / "labels.pq")["label"].to_numpy(zero_copy_only=False)
            values, n = np.unique(codes, return_counts=True)
            counts[name] = dict(zip(values.tolist(), n.tolist()))
        meta |= {
            "source_patches": {p: {"season": y} for p, y in PATCHES.items()},
            "samples_per_split": {s: int(sum(c.values())) for s, c in counts.items()},
            "split": f"{split} by parcel within each patch (cmap samples, split_seed 0), pooled",
        }
        (out / "meta.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return counts


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--root", type=Path, default=REPO.parent / "shared/data/worldcereal_flanders"
    )
    parser.add_argument("--split", default="[0.6, 0.2, 0.2]")
    args = parser.parse_args(argv)
    counts = pool(args.root, args.out, args.split)
    for name, per_code in counts.items():
        print(name, per_code)
    return counts


if __name__ == "__main__":
    main()
