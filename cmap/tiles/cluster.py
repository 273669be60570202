"""Where the tiles run: an embedded `LocalCluster` sized to this machine, or an existing Dask
scheduler (an address or a scheduler file, e.g. from dask-jobqueue or `dask scheduler`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cmap.errors import ConfigError

CONNECT_SECONDS = 10  # how long an existing scheduler may take to answer


def cores() -> int:
    """The cores this process may use (a job's share, not the whole node's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def connect(cluster: str, workers: int | None, threads: int, retries: int, resources: dict):
    """A `distributed.Client`: `local` starts a `LocalCluster` of `workers` processes (default
    cores // threads), each running one tile at a time; `tcp://HOST:PORT` or a scheduler file
    (a path ending in .json) joins a running scheduler, whose workers are its own."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise ConfigError(
            "--tiles needs dask.distributed: pip install 'cmap[cluster]' (or dask distributed)"
        ) from err
    if cluster == "local":
        count = workers or max(1, cores() // threads)
        # A worker lost while mapping (killed, out of memory) is retried like a failed tile.
        dask.config.set({"distributed.scheduler.allowed-failures": retries})
        local = LocalCluster(
            n_workers=count,
            threads_per_worker=1,  # one tile at a time; each tile's torch uses `threads`
            processes=True,
            dashboard_address=None,
            resources=resources or None,
            silence_logs=logging.ERROR,
        )
        return Client(local)
    if workers is not None:
        raise ConfigError(
            f"--workers sizes the embedded cluster (--cluster local); the scheduler at {cluster} "
            "has the workers it was started with"
        )
    scheduler_file = cluster.endswith(".json")
    if scheduler_file and not Path(cluster).is_file():
        raise ConfigError(f"--cluster {cluster}: scheduler file not found")
    try:
        if scheduler_file:
            return Client(scheduler_file=cluster, timeout=CONNECT_SECONDS)
        return Client(cluster, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as err:
        raise ConfigError(
            f"--cluster {cluster}: no Dask scheduler answered within {CONNECT_SECONDS} s "
            f"({type(err).__name__}); start one (dask scheduler) or use --cluster local"
        ) from None
    except ValueError as err:
        raise ConfigError(f"--cluster {cluster}: not a scheduler address ({err})") from None
