"""`cmap sweep`: a grid or an Optuna search over config values, one cmap run per trial.

The sweep folder holds everything: `optuna.db` (the study: a killed sweep, run again with the
same folder, keeps its finished trials and retries the one that was running), `trials/`
(each trial's Lightning logs and checkpoints), `hparams/` (TensorBoard's HParams view) and
`summary.csv` / `summary.md`.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import time
from pathlib import Path
from typing import Literal

import pytorch_lightning as pl

from cmap.errors import ConfigError, preview
from cmap.sweep.space import as_arguments, check_space, suggest
from cmap.sweep.summary import summary

log = logging.getLogger(__name__)


class ReportToTrial(pl.Callback):
    """Reports `metric` to the Optuna trial after each validation epoch, keeps its best value,
    and, when the pruner says so, ends the run after this epoch (a normal end: checkpoints,
    figures and logs are closed as usual); `pruned` then says why."""

    def __init__(self, trial, metric: str, maximize: bool):
        self.trial, self.metric, self.maximize = trial, metric, maximize
        self.best: float | None = None
        self.pruned: str | None = None

    def on_validation_end(self, trainer, pl_module) -> None:  # after the epoch's metrics
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            raise ConfigError(
                f"sweep: the runs log no {self.metric!r} "
                f"(they log {preview(sorted(trainer.callback_metrics), 12)})"
            )
        value = float(value)
        better = max if self.maximize else min
        self.best = value if self.best is None else better(self.best, value)
        self.trial.report(value, trainer.current_epoch)
        if self.trial.should_prune():
            self.pruned = f"epoch {trainer.current_epoch}: {self.metric} {value:.4f}"
            trainer.should_stop = True


def _optuna():
    """The optuna module, or a one-line error saying how to get it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError('cmap sweep needs optuna: pip install -e ".[sweep]"') from None
    return optuna


def _storage(folder: Path, heartbeat_s: int, attempts: int = 5):
    """The study's SQLite storage; a first open that races another process making the same
    tables (two sweeps started at once on a new folder) is tried again."""
    import sqlalchemy.exc

    optuna = _optuna()
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(
                f"sqlite:///{folder / 'optuna.db'}",
                engine_kwargs={"connect_args": {"timeout": 60}},
                heartbeat_interval=heartbeat_s,
                grace_period=2 * heartbeat_s,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=2
                ),
            )
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _study(settings: dict, worker: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder, seed = Path(settings["folder"]), settings["seed"] + worker
    if settings["sampler"] in ("grid", "random"):
        # a grid's trials are all queued (queue_grid), none is drawn; Optuna's GridSampler
        # would stop a process while queued trials wait
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=2)
        if settings["prune"]
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(
        study_name="cmap",
        storage=_storage(folder, settings["heartbeat_s"]),
        sampler=sampler,
        pruner=pruner,
        direction=settings["direction"],
        load_if_exists=True,
    )


def _objective(settings: dict):
    from cmap.cli import build

    folder = Path(settings["folder"])

    def objective(trial) -> float:
        values = suggest(trial, settings["space"])
        argv = ["--config", settings["run_config"], *settings["args"], *as_arguments(values)]
        argv += ["--trainer.logger.init_args.save_dir", str(folder / "trials")]
        argv += ["--trainer.logger.init_args.name", f"trial_{trial.number}"]
        argv += ["--trainer.enable_progress_bar", "false"]
        cli = build(argv)
        trial.set_user_attr("log_dir", f"trials/trial_{trial.number}")
        report = ReportToTrial(trial, settings["metric"], settings["direction"] == "maximize")
        cli.trainer.callbacks.append(report)
        cli.trainer.fit(cli.model, cli.datamodule)
        if report.pruned:
            raise _optuna().TrialPruned(report.pruned)
        if report.best is None:
            raise ConfigError("sweep: the run ended before any validation epoch")
        _log_hparams(folder, trial.number, values, settings["metric"], report.best)
        return report.best

    return objective


def _log_hparams(folder: Path, number: int, values: dict, metric: str, best: float) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(folder / "hparams" / f"trial_{number}")) as writer:
        writer.add_hparams(values, {f"best {metric}": best}, run_name=".")


def queue_grid(study, space: dict[str, dict]) -> int:
    """Queue every combination of the choices without a trial (failed ones aside; a stale
    running one is failed and queued again first), so that processes take them one each;
    returns the number of trials waiting."""
    _optuna().storages.fail_stale_trials(study)
    keys = list(space)
    seen = {tuple(t.params.get(k) for k in keys) for t in study.trials if t.state.name != "FAIL"}
    for values in itertools.product(*(space[k]["choices"] for k in keys)):
        if values not in seen:
            study.enqueue_trial(dict(zip(keys, values)))
    return len(study.get_trials(states=(_optuna().trial.TrialState.WAITING,)))


def _work(settings: dict, worker: int) -> None:
    """One process's share of the sweep: its share of a grid's queue, else trials until the
    study holds `n_trials` finished ones."""
    import optuna

    if settings["gpus"] and worker < settings["gpus"]:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(worker)
    study = _study(settings, worker)
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    stop = optuna.study.MaxTrialsCallback(settings["n_trials"], states=done)
    n_trials = settings["shares"][worker] if "shares" in settings else settings["n_trials"]
    if n_trials and len(study.get_trials(states=done)) < settings["n_trials"]:
        study.optimize(
            _objective(settings), n_trials=n_trials, callbacks=[stop], catch=(RuntimeError,)
        )


def sweep(
    run_config: Path,
    folder: Path,
    space: dict[str, dict],
    args: list[str] = [],  # noqa: B006
    metric: str = "val/f1_macro",
    direction: Literal["maximize", "minimize"] = "maximize",
    sampler: Literal["tpe", "random", "grid"] = "tpe",
    n_trials: int | None = None,
    seed: int = 0,
    prune: bool = True,
    processes: int = 1,
    heartbeat_s: int = 30,
) -> None:
    """Search config values (grid or Optuna), one cmap fit per trial; resumable.

    Args:
        run_config: the cmap config every trial starts from.
        folder: the sweep folder (made if needed; run again with it to resume).
        space: cmap arguments to search, e.g. `model.init_args.optimizer.init_args.lr:
            {type: float, low: 1.0e-4, high: 1.0e-2, log: true}`, `{type: int, low, high}` or
            `{type: categorical, choices: [...]}`.
        args: more cmap arguments for every trial (e.g. the data root, max_epochs).
        metric: what a trial is scored by: its best value over validation epochs.
        direction: maximize or minimize the metric.
        sampler: tpe (Optuna's default), random, or grid (every combination of the choices).
        n_trials: finished (complete or pruned) trials to reach; default the grid's size, or
            20.
        seed: the samplers' seed (process i uses seed + i); the runs' own seed is the config's.
        prune: stop trials whose metric falls below the median of earlier trials at the same
            epoch (after 2 trials).
        processes: trials run at once, each in its own process (one GPU each when there are
            GPUs).
        heartbeat_s: a trial whose process stops beating for twice this is retried (twice at
            most) by the next sweep on the folder.
    """
    import torch

    _optuna()
    check_space(space, sampler)
    if not Path(run_config).is_file():
        raise ConfigError(f"sweep: run_config {run_config}: no such file")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if n_trials is None:
        n_trials = 20
        if sampler == "grid":
            n_trials = 1
            for spec in space.values():
                n_trials *= len(spec["choices"])
    settings = {
        "run_config": str(run_config),
        "folder": str(folder),
        "space": space,
        "args": list(args),
        "metric": metric,
        "direction": direction,
        "sampler": sampler,
        "n_trials": n_trials,
        "seed": seed,
        "prune": prune,
        "heartbeat_s": heartbeat_s,
        "gpus": torch.cuda.device_count() if processes > 1 else 0,
    }
    start = time.perf_counter()
    study = _study(settings, 0)  # made here once, before any worker opens it
    if sampler == "grid":  # each process runs its share of the queue: no combination twice
        queued = queue_grid(study, space)
        settings["shares"] = [
            queued // processes + (i < queued % processes) for i in range(processes)
        ]
    if processes > 1:
        context = multiprocessing.get_context("spawn")
        workers = [context.Process(target=_work, args=(settings, i)) for i in range(processes)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    else:
        _work(settings, 0)
    waiting = study.get_trials(states=(_optuna().trial.TrialState.WAITING,))
    if sampler == "grid" and waiting:  # a process stopped before its share: run the rest here
        _work(settings | {"shares": [len(waiting)]}, 0)
    rows = summary(study, folder, metric)
    finished = [r for r in rows if r["state"] == "COMPLETE"]
    log.info(
        "sweep: %d trials (%d complete) in %.0f s",
        len(rows),
        len(finished),
        time.perf_counter() - start,
    )
    if finished:
        best = study.best_trial
        print(f"best trial {best.number}: {metric} {best.value:.4f} with {best.params}")
    print(f"wrote {folder / 'summary.csv'} and {folder / 'summary.md'}")
