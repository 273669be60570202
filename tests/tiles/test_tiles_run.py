"""`cmap predict --tiles` on a 2-worker LocalCluster (localhost only): the maps of serial
`cmap predict`, a lost worker's tile resumed, failed tiles reported and finished by a re-run,
bad input in one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rasterio

from cmap.data.demo.tiles import write_tiles
from tests.helpers import DEMO_CUBE, REPO, garble_block

pytestmark = pytest.mark.slow
CONFIG = str(REPO / "configs" / "predict_demo.yaml")
QUIET = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]


def tiles_args(checkpoint, pattern, output, *extra):
    return [
        "predict",
        "--config",
        CONFIG,
        "--ckpt_path",
        str(checkpoint),
        "--tiles",
        str(pattern),
        "--output",
        str(output),
        *map(str, extra),
    ]


def serial(run_cmap, checkpoint, tile: Path, output: Path, cwd, *extra):
    """`cmap predict` of one tile, as a user runs it without --tiles."""
    output.parent.mkdir(exist_ok=True)
    done = run_cmap(
        "predict",
        "--config",
        CONFIG,
        "--ckpt_path",
        checkpoint,
        *QUIET,
        "--data.init_args.cube",
        tile,
        "--output",
        output,
        *extra,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def same_files(a: Path, b: Path) -> None:
    for name in ("{}.tif", "{}_probabilities.tif"):
        first, second = a.with_name(name.format(a.stem)), b.with_name(name.format(b.stem))
        assert first.read_bytes() == second.read_bytes(), first


@pytest.fixture(scope="module")
def tiles(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiles")
    write_tiles(DEMO_CUBE, folder, grid=2)
    return folder


def test_two_workers_map_the_tiles_as_serial_predict_does(tiles, checkpoint, tmp_path, run_cmap):
    done = run_cmap(
        *tiles_args(checkpoint, tiles / "T*", tmp_path / "maps", "--workers", 2), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("cmap: [")]
    assert len(lines) == 4 and all(" pixels in " in line for line in lines)  # one per tile
    manifest = json.loads((tmp_path / "maps" / "manifest.json").read_text())
    assert manifest["command"][:2] == ["cmap", "predict"]
    workers = set()
    for name in ("T00", "T01", "T10", "T11"):
        serial(run_cmap, checkpoint, tiles / name, tmp_path / "serial" / f"{name}.tif", tmp_path)
        same_files(tmp_path / "maps" / f"{name}.tif", tmp_path / "serial" / f"{name}.tif")
        record = manifest["tiles"][name]
        assert record["status"] == "done" and record["tile"] == str(tiles / name)
        with rasterio.open(tmp_path / "maps" / f"{name}.tif") as src:
            assert record["pixels"] == int((src.read(1) != 255).sum()) > 0
        assert len(record["sha256"][f"{name}.tif"]) == 64 and record["seconds"] > 0
        workers.add(record["worker"])
    assert len(workers) == 2  # the tiles were shared between the two workers
    with rasterio.open(tmp_path / "maps" / "mosaic.vrt") as src:
        mosaic = src.read(1)
        assert src.shape == (80, 80)
    with rasterio.open(tmp_path / "maps" / "T10.tif") as src:
        assert (mosaic[40:, :40] == src.read(1)).all()
    with rasterio.open(tmp_path / "maps" / "mosaic_probabilities.vrt") as src:
        assert src.count == 7
    demo = REPO / "data" / "demo"
    assessed = run_cmap(
        "assess",
        tmp_path / "maps" / "mosaic.vrt",
        demo / "cube_points.csv",
        "--label_mapping",
        demo / "label_mapping.yaml",
        cwd=tmp_path,
    )
    assert assessed.returncode == 0, assessed.stderr[-2000:]  # national figures: one command
    assert json.loads((tmp_path / "maps" / "mosaic_assessment.json").read_text())
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "maps").glob("T*.tif")}
    again = run_cmap(
        *tiles_args(checkpoint, tiles / "T*", tmp_path / "maps", "--workers", 2), cwd=tmp_path
    )
    assert again.returncode == 0 and "4 mapped before, 0 to map" in again.stderr
    assert before == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "maps").glob("T*.tif")}


def children(output: Path) -> list[tuple[int, int]]:
    """(pid, parent pid) of the `cmap predict` processes writing `output`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if str(output).encode() in args and b"--data.init_args.cube" in args:
            found.append((int(proc.name), parent))
    return found


def test_a_worker_killed_mid_tile_is_replaced_and_the_tile_resumed(checkpoint, tmp_path, run_cmap):
    big = tmp_path / "big"
    write_tiles(DEMO_CUBE, big, grid=2, size=160)  # 100 windows of 16 pixels a tile
    maps = tmp_path / "maps"
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "cmap", *tiles_args(checkpoint, big / "T*", maps, "--workers", 2)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    parts = maps / "T00.tif.parts"
    deadline = time.time() + 180
    while time.time() < deadline:
        if parts.is_dir() and len(list(parts.glob("w*.npz"))) >= 5:
            break
        time.sleep(0.05)
    [(child, worker)] = children(maps / "T00.tif")
    os.kill(worker, signal.SIGKILL)  # the Dask worker mapping T00, and with it its child
    _, stderr = coordinator.communicate(timeout=300)
    assert coordinator.returncode == 0, stderr[-3000:]
    record = json.loads((maps / "manifest.json").read_text())["tiles"]["T00"]
    assert record["status"] == "done" and record["resumed"], record
    assert not Path(f"/proc/{child}").exists()  # the killed worker's child did not live on
    serial(run_cmap, checkpoint, big / "T00", tmp_path / "serial" / "T00.tif", tmp_path)
    same_files(maps / "T00.tif", tmp_path / "serial" / "T00.tif")


def test_failing_tiles_are_reported_the_others_written_and_a_rerun_finishes_them(
    checkpoint, tmp_path, run_cmap
):
    broken = tmp_path / "tiles"
    write_tiles(DEMO_CUBE, broken, grid=2)
    cut = sorted((broken / "T10").glob("*.tif"))[10]  # its header is cut short: cannot open
    garbled = sorted((broken / "T11").glob("*.tif"))[10]  # opens, its pixels cannot be read
    good = {cut: cut.read_bytes(), garbled: garbled.read_bytes()}
    cut.write_bytes(good[cut][: len(good[cut]) * 2 // 3])
    garble_block(garbled)
    args = tiles_args(checkpoint, broken / "T*", tmp_path / "maps", "--workers", 2)
    done = run_cmap(
        *args, "--retries", 1, "--resources", "GPU=1", cwd=tmp_path
    )  # GPU workers' path
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("cmap: error: 2 of 4 tiles failed: T10: ") and "T11: " in last
    assert f"{cut}: cannot be read" in last, last
    manifest = json.loads((tmp_path / "maps" / "manifest.json").read_text())["tiles"]
    assert [manifest[n]["status"] for n in ("T00", "T01", "T10", "T11")] == [
        "done",
        "done",
        "failed",
        "failed",
    ]
    assert f"{garbled}: cannot be read" in manifest["T11"]["error"]
    assert (tmp_path / "maps" / "T11.tif.parts").is_dir()  # unfinished: continued by a rerun
    with rasterio.open(tmp_path / "maps" / "mosaic.vrt") as src:
        assert src.tags()["TILES"] == "T00.tif,T01.tif"
    for path, content in good.items():
        path.write_bytes(content)
    again = run_cmap(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 mapped before, 2 to map" in again.stderr
    manifest = json.loads((tmp_path / "maps" / "manifest.json").read_text())["tiles"]
    assert all(manifest[n]["status"] == "done" for n in ("T00", "T01", "T10", "T11"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bad_input_is_one_line(tiles, checkpoint, tmp_path, run_cmap):
    def error(*args, cwd=tmp_path):
        done = run_cmap(*args, cwd=cwd)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
        return done.stderr.strip().splitlines()[-1]

    address = f"tcp://127.0.0.1:{free_port()}"
    said = error(*tiles_args(checkpoint, tiles / "T*", tmp_path / "a", "--cluster", address))
    assert said.startswith(f"cmap: error: --cluster {address}: no Dask scheduler answered")
    said = error(*tiles_args(checkpoint, tmp_path / "none*", tmp_path / "b"))
    assert said == f"cmap: error: --tiles {tmp_path / 'none*'}: no file or folder matches"
    said = error(*tiles_args(checkpoint, tiles / "T*", tmp_path / "c.tif"))
    assert "give the folder of the tiles' maps" in said
    said = error(*tiles_args(checkpoint, tiles / "T*", tmp_path / "g", "--grid", "400"))
    assert said == "cmap: error: --grid tiles one STAC catalogue; --tiles lists 4"
    said = error(*tiles_args(checkpoint, tiles / "T00", tmp_path / "g", "--grid", "400"))
    assert said.endswith(f"--grid tiles a STAC catalogue (.json): {tiles / 'T00'} is not one")
    other = tmp_path / "other"  # a tile without B12
    write_tiles(DEMO_CUBE, other, grid=1)
    for path in (other / "T00").glob("*.tif"):
        with rasterio.open(path) as src:
            data, profile, names = src.read()[:-1], src.profile, src.descriptions[:-1]
        with rasterio.open(path, "w", **(profile | {"count": 9})) as dst:
            dst.write(data)
            dst.descriptions = names
    meta = (other / "T00" / "meta.yaml").read_text().replace("- B12\n", "")
    (other / "T00" / "meta.yaml").write_text(meta)
    (other / "T00").rename(other / "X00")
    said = error(
        "predict",
        "--config",
        CONFIG,
        "--ckpt_path",
        checkpoint,
        "--tiles",
        tiles / "T00",
        other / "X00",
        "--output",
        tmp_path / "d",
    )
    assert said.startswith(f"cmap: error: {other / 'X00'}: has bands B02, B03") and (
        f"tile {tiles / 'T00'} has B02" in said
    )
    assert not (tmp_path / "d" / "T00.tif").exists()  # refused before anything ran
