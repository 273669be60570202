"""`cmap predict --config ... --ckpt_path ... --tiles PATTERN... --output FOLDER`: every tile
mapped by `cmap predict` on a Dask cluster, one COG per tile (and probabilities), mosaics
(`mosaic.vrt`) and `manifest.json` in FOLDER; a re-run finishes only what is missing."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import uuid
from pathlib import Path

from cmap.errors import CmapError, ConfigError, DataError, preview
from cmap.io.checkpoints import check_checkpoint
from cmap.io.lock import OutputLock
from cmap.tiles.cluster import connect
from cmap.tiles.grid import grid_tiles
from cmap.tiles.listing import list_tiles
from cmap.tiles.manifest import Manifest, file_digest
from cmap.tiles.mosaic import mosaics
from cmap.tiles.work import finished, predict_tile

RUN = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]  # each tile's


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cmap predict --tiles",
        description="Map many tiles on a Dask cluster; the other arguments are cmap predict's "
        "(--config, --ckpt_path, --trainer.*, --data.init_args.* except cube).",
    )
    p.add_argument("--tiles", nargs="+", required=True, help="glob patterns, paths or @FILE")
    p.add_argument("--output", required=True, help="folder of the maps, mosaics and manifest")
    p.add_argument("--grid", help="tile one STAC catalogue: a cell size (crs units) or mgrs")
    p.add_argument("--cluster", default="local", help="local, tcp://HOST:PORT or a .json file")
    p.add_argument("--workers", type=int, help="local cluster: processes (default cores/threads)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each tile's run")
    p.add_argument("--retries", type=int, default=2, help="attempts after a crash or lost worker")
    p.add_argument("--resources", default="", help="resources a tile needs, e.g. GPU=1")
    p.add_argument("--overwrite", default="false", choices=["true", "false"])
    return p


def _resources(text: str) -> dict[str, float]:
    found = {}
    for item in filter(None, text.split(",")):
        name, _, amount = item.partition("=")
        try:
            found[name.strip()] = float(amount)
        except ValueError:
            raise ConfigError(f"--resources {text}: give NAME=AMOUNT, e.g. GPU=1") from None
    return found


def _value(rest: list[str], option: str) -> str | None:
    for k, arg in enumerate(rest):
        if arg == option and k + 1 < len(rest):
            return rest[k + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def _without(rest: list[str], option: str) -> list[str]:
    """`rest` less `option VALUE` (or `option=VALUE`)."""
    out, skip = [], False
    for arg in rest:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def _absolute(rest: list[str]) -> list[str]:
    """Config and checkpoint paths made absolute: workers may start elsewhere."""
    out = list(rest)
    for k, arg in enumerate(out[:-1]):
        if arg in ("--config", "--ckpt_path") and out[k + 1] != "last":
            out[k + 1] = str(Path(out[k + 1]).resolve())
    return out


def data_spec(rest: list[str]):
    """The config's data section, parsed as `cmap predict` parses it (nothing built)."""
    from cmap.cli import CMapCLI

    class DataOnly(CMapCLI):
        def instantiate_classes(self) -> None:
            self.spec = self.config.data

    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        args = [*_without(rest, "--ckpt_path"), "--data.init_args.cube", "-", *RUN]
        args += ["--seed_everything", "false"]  # parsing only: no "Seed set" line
        return DataOnly(args, run=False).spec
    finally:
        sys.argv = argv


def cell_arguments(cell: dict | None) -> list[str]:
    """A grid cell's data arguments on the command line (`bounds`, and `crs`, `resolution`
    for an MGRS tile)."""
    out = []
    for key, value in (cell or {}).items():
        out += [f"--data.init_args.{key}", str(value)]
    return out


def preflight(spec, tiles: dict[str, Path], cells: dict[str, dict]) -> dict[str, str]:
    """Every tile opened with the config's data settings `spec`, before anything runs: those
    that do not open are returned (name -> why; they are reported, the others mapped); a
    tile of other bands (or classes, where cubes have labels) than the first refuses the
    run."""
    from cmap.links import construct

    first, failed = None, {}
    for name, tile in tiles.items():
        spec.init_args.cube = str(tile)
        for key, value in cells.get(name, {}).items():
            setattr(spec.init_args, key, value)
        try:
            data = construct(spec)
        except CmapError as err:
            failed[name] = str(err)
            continue
        if not getattr(data, "mappable", False):
            raise ConfigError("--tiles maps cubes: the config's data must be a CubeDataModule")
        if first is None:
            first = (tile, data.bands, data.classes if data.labelled else None)
        for what, mine in (("bands", first[1]), ("classes", first[2])):
            theirs = getattr(data, what)
            if what == "classes" and (mine is None or not data.labelled):
                continue
            if list(mine) != list(theirs):
                raise DataError(
                    tile,
                    f"has {what} {preview(theirs, 8)}, tile {first[0]} has {preview(mine, 8)}: "
                    "one run maps tiles of one band set with one model",
                )
        data.cube.close()
    return failed


class Progress:
    """One line per tile; on a terminal, a bar over tiles with pixels/s under them."""

    def __init__(self, total: int):
        self.total, self.done, self.pixels = total, 0, 0
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def tile(self, name: str, record: dict) -> None:
        self.done += 1
        if record["status"] == "done":
            self.pixels += record.get("pixels", 0)
            seconds = record.get("seconds", 0.0)
            rate = f" ({record.get('pixels', 0) / seconds:,.0f} pixels/s)" if seconds else ""
            how = ", resumed from its parts" if record.get("resumed") else ""
            said = f"{record.get('pixels', 0):,} pixels in {seconds:.1f} s{rate}{how}"
        else:
            said = f"FAILED: {record.get('error')}"
        line = f"cmap: [{self.done}/{self.total}] {name}: {said}"
        print(("\r\033[K" if self.tty else "") + line, file=sys.stderr)
        if self.tty:
            width = 30
            filled = round(width * self.done / self.total)
            rate = self.pixels / max(time.perf_counter() - self.start, 1e-9)
            bar = "#" * filled + "-" * (width - filled)
            print(
                f"[{bar}] {self.done}/{self.total} tiles, {rate:,.0f} pixels/s",
                end="",
                file=sys.stderr,
                flush=True,
            )


def _outputs(out: Path) -> list[Path]:
    stem = out.with_suffix("")
    return [
        out,
        out.with_name(out.name + ".parts"),
        out.with_name(out.name + ".lock"),
        Path(f"{stem}_probabilities.tif"),
        Path(f"{stem}.png"),
    ]


def plan(
    tiles: dict[str, Path],
    folder: Path,
    manifest: Manifest,
    model: str,
    overwrite: bool,
    cells: dict[str, dict] | None = None,
):
    """The tiles to run now; those mapped before by this model (from the same tile, or grid
    cell) are kept, a map of unknown origin is refused (with overwrite, every tile runs: see
    `clear`)."""
    todo, kept, refused, cells = {}, {}, {}, cells or {}
    for name, path in tiles.items():
        out = folder / f"{name}.tif"
        record = manifest.tiles.get(name, {})
        if not overwrite and out.exists() and not out.with_name(out.name + ".parts").exists():
            ours = record.get("model") == model and record.get("tile") == str(path)
            ours = ours and record.get("cell") == cells.get(name)
            if ours and record.get("status") == "done":
                kept[name] = record
                continue
            if ours and record.get("status") == "pending":  # finished, not yet recorded
                kept[name] = finished(out).record() | {"tile": str(path), "model": model}
                kept[name] |= {"cell": cells[name]} if name in cells else {}
                manifest.set(name, kept[name])
                continue
            refused[name] = (
                f"{out} exists and this folder's manifest does not record it as mapped by "
                "this checkpoint from this tile; pass --overwrite true to replace it"
            )
            continue
        todo[name] = path
    return todo, kept, refused


def clear(folder: Path, names) -> None:
    """Remove the tiles' earlier maps, parts, locks and quicklooks (`--overwrite true`)."""
    for name in names:
        for leftover in _outputs(folder / f"{name}.tif"):
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink(missing_ok=True)


def predict_tiles(argv: list[str]) -> None:
    """Run `cmap predict --tiles ...` (arguments after `predict`)."""
    options, rest = parser().parse_known_args(argv)
    if _value(rest, "--data.init_args.cube") or _value(rest, "--trainer.callbacks.output"):
        raise ConfigError(
            "--tiles gives each run its cube and output: leave out "
            "--data.init_args.cube and --trainer.callbacks.output"
        )
    if options.threads < 1 or (options.workers is not None and options.workers < 1):
        raise ConfigError("--workers and --threads must be at least 1")
    checkpoint = _value(rest, "--ckpt_path")
    if not checkpoint or checkpoint == "last":
        raise ConfigError("cmap predict --tiles needs --ckpt_path CHECKPOINT (a file)")
    check_checkpoint(Path(checkpoint))
    resources = _resources(options.resources)
    tiles = list_tiles(options.tiles)
    rest = _absolute(rest)
    spec = data_spec(rest)
    cells: dict[str, dict] = {}
    if options.grid:
        if len(tiles) != 1:
            raise ConfigError(f"--grid tiles one STAC catalogue; --tiles lists {len(tiles)}")
        catalogue = next(iter(tiles.values()))
        cells = grid_tiles(catalogue, options.grid, vars(spec.init_args))
        tiles = dict.fromkeys(cells, catalogue)
    folder = Path(options.output)
    if folder.suffix.lower() in (".tif", ".tiff", ".vrt"):
        raise ConfigError(f"--output {folder}: with --tiles, give the folder of the tiles' maps")
    folder.mkdir(parents=True, exist_ok=True)
    lock = OutputLock(folder / "manifest.json.lock")
    lock.acquire()
    try:
        _run(options, rest, spec, tiles, cells, folder.resolve(), checkpoint, resources, argv)
    finally:
        lock.release()


def _run(options, rest, spec, tiles, cells, folder: Path, checkpoint, resources, argv) -> None:
    manifest = Manifest(folder)
    model = file_digest(Path(checkpoint))
    overwrite = options.overwrite == "true"
    todo, kept, refused = plan(tiles, folder, manifest, model, overwrite, cells)
    unreadable = preflight(spec, todo, cells) if todo else {}
    refused |= unreadable
    todo = {n: p for n, p in todo.items() if n not in unreadable}
    if options.overwrite == "true":  # only once every tile has been checked
        clear(folder, todo)
    manifest.data["command"] = ["cmap", "predict", *argv]
    manifest.data["model"] = model
    for name, path in todo.items():
        manifest.tiles[name] = {"tile": str(path), "status": "pending", "model": model}
        manifest.tiles[name] |= {"cell": cells[name]} if name in cells else {}
    manifest.save()
    print(
        f"cmap: {len(tiles)} tiles: {len(kept)} mapped before, {len(todo)} to map, "
        f"{len(refused)} refused",
        file=sys.stderr,
    )
    progress = Progress(len(todo) + len(refused))
    for name, error in refused.items():
        record = {"tile": str(tiles[name]), "status": "failed", "error": error}
        manifest.set(name, record)
        progress.tile(name, record)
    if todo:
        _map(options, rest, todo, cells, folder, manifest, model, resources, progress)
    done = [
        folder / f"{n}.tif"
        for n, r in manifest.tiles.items()
        if n in tiles and r.get("status") == "done"
    ]
    probabilities = bool(done) and all(
        p.with_name(f"{p.stem}_probabilities.tif").exists() for p in done
    )
    written = mosaics(done, folder, probabilities) if done else []
    failed = {
        n: manifest.tiles[n].get("error")
        for n in tiles
        if manifest.tiles.get(n, {}).get("status") != "done"
    }
    seconds = time.perf_counter() - progress.start
    print(
        f"cmap: {len(done)} of {len(tiles)} tiles mapped in {folder} ({progress.pixels:,} "
        f"pixels now, {seconds:.1f} s); manifest {manifest.path}",
        file=sys.stderr,
    )
    for path in written:
        print(f"cmap: wrote {path}", file=sys.stderr)
    if failed:
        listed = "; ".join(f"{n}: {e}" for n, e in list(failed.items())[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        raise CmapError(
            f"{len(failed)} of {len(tiles)} tiles failed: {listed}{more}; the others are "
            "written, and the same command again maps only what is missing"
        )


def _map(options, rest, todo, cells, folder, manifest, model, resources, progress) -> None:
    from distributed import as_completed

    client = connect(options.cluster, options.workers, options.threads, options.retries, resources)
    run = uuid.uuid4().hex[:8]
    try:
        futures = {
            client.submit(
                predict_tile,
                [*rest, *RUN, *cell_arguments(cells.get(name))],
                str(path),
                str(folder / f"{name}.tif"),
                options.threads,
                key=f"cmap-tile-{name}-{run}",
                retries=options.retries,
                resources=resources or None,
                pure=False,
            ): name
            for name, path in todo.items()
        }
        for future in as_completed(futures):
            name = futures[future]
            try:
                record = future.result()
            except Exception as err:  # the last attempt's failure, or every worker lost
                record = {
                    "tile": str(todo[name]),
                    "status": "failed",
                    "error": _failure(err, options.retries),
                }
            record["model"] = model
            record |= {"cell": cells[name]} if name in cells else {}
            manifest.set(name, record)
            progress.tile(name, record)
    finally:
        local = options.cluster == "local"
        cluster = client.cluster if local else None
        client.close()
        if cluster is not None:
            cluster.close()


def _failure(err: BaseException, retries: int) -> str:
    if type(err).__name__ == "KilledWorker":
        return (
            f"its worker died {retries + 1} times while mapping it (out of memory, or "
            "killed); what was finished is kept in its parts"
        )
    return f"{err} (after {retries + 1} attempts)"
