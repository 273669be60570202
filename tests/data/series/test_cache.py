"""The prepared-split cache: reused while sources are unchanged, rebuilt when they change."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

import cmap.data.series.module as datamodule_module
from cmap.data import SITSDataModule
from cmap.data.series.cache import COMPLETE, DiskArray
from cmap.errors import DataError


def first_batches(dm: SITSDataModule, split: str = "val", n: int = 3):
    dm.setup("fit")
    return [batch for _, batch in zip(range(n), dm._loader(split, shuffle=False))]


def entries(cache):
    return sorted(p.name for p in cache.iterdir())


@pytest.fixture
def root(synthetic_root, tmp_path):
    copy = tmp_path / "samples"
    shutil.copytree(synthetic_root, copy)
    return copy


def test_cached_split_gives_the_same_batches_and_is_reused(root, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    reference = SITSDataModule(str(root), batch_size=16)
    plain = first_batches(reference)
    plain_ids = reference.datasets["val"].table.poi_ids.tolist()
    cached = first_batches(SITSDataModule(str(root), batch_size=16, cache_dir=str(cache)))
    assert [name.split("-")[0] for name in entries(cache)] == ["train", "val"]
    for a, b in zip(plain, cached):
        for key in a:
            torch.testing.assert_close(a[key], b[key])

    # A second run reads the cache: the parquet reader is never called.
    def fail(*args, **kwargs):
        raise AssertionError("parquet re-read although the cache is valid")

    monkeypatch.setattr(datamodule_module, "load_series", fail)
    dm = SITSDataModule(str(root), batch_size=16, cache_dir=str(cache))
    again = first_batches(dm)
    torch.testing.assert_close(again[0]["ts"], plain[0]["ts"])
    table = dm.datasets["train"].table
    assert isinstance(table.values, DiskArray)  # observation rows stay on disk
    reference_values = reference.datasets["train"].table.values
    assert table.values.shape == reference_values.shape
    starts, lengths = np.array([0, 7, 40]), np.array([3, 0, 5])
    runs = table.values.read_runs(starts, lengths, 6)
    np.testing.assert_array_equal(runs[0, :3], reference_values[0:3])
    np.testing.assert_array_equal(runs[2, :5], reference_values[40:45])
    assert (runs[1] == 0).all() and (runs[0, 3:] == 0).all()
    assert dm.datasets["val"].table.poi_ids.tolist() == plain_ids


def test_changed_sources_or_settings_rebuild_the_cache(root, tmp_path):
    cache = tmp_path / "cache"
    SITSDataModule(str(root), cache_dir=str(cache)).setup("validate")
    (old,) = entries(cache)
    features = root / "val" / "features.pq"
    stat = features.stat()
    os.utime(features, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # file rewritten
    SITSDataModule(str(root), cache_dir=str(cache)).setup("validate")
    (new,) = entries(cache)  # the stale entry of the same split is gone
    assert new != old
    SITSDataModule(str(root), cache_dir=str(cache), seasons=[2021]).setup("validate")
    assert len(entries(cache)) == 1 and entries(cache)[0] != new  # other settings, new entry
    dm = SITSDataModule(str(root), cache_dir=str(cache), seasons=[2021])
    dm.setup("validate")
    assert set(dm.datasets["val"].table.seasons.tolist()) == {2021}


def test_an_interrupted_cache_build_is_redone(root, tmp_path):
    cache = tmp_path / "cache"
    SITSDataModule(str(root), cache_dir=str(cache)).setup("validate")
    (entry,) = cache.iterdir()
    (entry / COMPLETE).unlink()
    (entry / "values.npy").write_bytes(b"truncated")
    dm = SITSDataModule(str(root), cache_dir=str(cache))
    dm.setup("validate")
    assert (entry / COMPLETE).exists() and len(dm.datasets["val"]) > 0


def test_unwritable_cache_is_a_clear_error(root, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    with pytest.raises(DataError, match="cannot write the cache .*set another cache_dir"):
        SITSDataModule(str(root), cache_dir=str(blocker)).setup("validate")
