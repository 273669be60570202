"""The server's side: Flower's FedAvg, FedProx and FedAvgM, and a wrapper that records every
round per client in TensorBoard and keeps the run deterministic."""

from __future__ import annotations

import logging
from typing import Literal

from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import FedAvg, FedAvgM, FedProx, Strategy
from flwr.server.strategy.aggregate import aggregate
from torch.utils.tensorboard import SummaryWriter

log = logging.getLogger(__name__)

STRATEGIES = ("fedavg", "fedprox", "fedavgm")


def make_strategy(
    name: Literal["fedavg", "fedprox", "fedavgm"],
    rounds: int,
    local_epochs: int,
    seed: int,
    clients: int,
    fraction_fit: float = 1.0,
    proximal_mu: float = 0.01,
    server_learning_rate: float = 1.0,
    server_momentum: float = 0.9,
    initial_parameters=None,
    keep_optimizer: bool = False,
    personal_epochs: int = 0,
) -> Strategy:
    """Flower's strategy `name`; each round tells the clients its number, the local epochs,
    the seed, whether to keep their optimizer's state and (FedProx) mu; the last round's
    evaluation asks them to save the model (and fine-tune it for `personal_epochs`)."""

    def fit_config(server_round: int) -> dict:
        keep = int(keep_optimizer)
        return {
            "round": server_round,
            "local_epochs": local_epochs,
            "seed": seed,
            "keep_optimizer": keep,
        }

    def evaluate_config(server_round: int) -> dict:
        config = {"round": server_round, "final": int(server_round == rounds)}
        if server_round == rounds and personal_epochs:
            done = rounds * local_epochs
            config |= {"personal_epochs": personal_epochs, "epochs_done": done, "seed": seed}
        return config

    common = dict(
        fraction_fit=fraction_fit,
        fraction_evaluate=1.0,
        min_fit_clients=1,
        min_evaluate_clients=1,
        min_available_clients=clients,
        on_fit_config_fn=fit_config,
        on_evaluate_config_fn=evaluate_config,
        accept_failures=True,
        initial_parameters=initial_parameters,
        fit_metrics_aggregation_fn=_none,  # `Recorded` averages the clients' metrics
        evaluate_metrics_aggregation_fn=_none,
    )
    if name == "fedavg":
        return FedAvg(**common)
    if name == "fedprox":
        return FedProx(**common, proximal_mu=proximal_mu)
    if name == "fedavgm":
        return ServerMomentum(
            **common, server_learning_rate=server_learning_rate, server_momentum=server_momentum
        )
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


class ServerMomentum(FedAvgM):
    """Flower's FedAvgM whose server step moves the trained parameters only: the buffers
    (batch-norm statistics and counters, which the clients name in their `buffers` metric)
    take the clients' plain weighted mean, as momentum could carry a variance below zero."""

    def aggregate_fit(self, server_round, results, failures):
        parameters, metrics = super().aggregate_fit(server_round, results, failures)
        buffers = {int(i) for _, r in results for i in str(r.metrics.get("buffers", "")).split()}
        if parameters is None or not buffers:
            return parameters, metrics
        mean = aggregate(
            [(parameters_to_ndarrays(r.parameters), r.num_examples) for _, r in results]
        )
        stepped = parameters_to_ndarrays(parameters)
        arrays = [mean[i] if i in buffers else a for i, a in enumerate(stepped)]
        self.initial_parameters = ndarrays_to_parameters(arrays)  # the global model now
        return self.initial_parameters, metrics


class Recorded(Strategy):
    """`inner` with each round's client metrics written to TensorBoard (`clients/<name>/...`,
    and `federation/...`: means weighted by the clients' series), results taken in client
    order (so sums do not depend on which client finished first), and every client waited
    for once only: after the first round a dropped client no longer holds the run up.

    Args:
        inner: a Flower strategy.
        log_dir: the TensorBoard folder.
    """

    def __init__(self, inner: Strategy, log_dir: str):
        self.inner = inner
        self.writer = SummaryWriter(log_dir)
        self.rounds: dict[int, dict] = {}  # per round: who trained, what failed, the means

    def __getattr__(self, name):  # e.g. the inner strategy's own settings
        return getattr(self.__dict__["inner"], name)

    def initialize_parameters(self, client_manager):
        return self.inner.initialize_parameters(client_manager)

    def configure_fit(self, server_round, parameters, client_manager):
        if getattr(self.inner, "initial_parameters", None) is None:
            self.inner.initial_parameters = parameters  # FedAvgM's momentum starts here
        if server_round == 1:  # the first round waits for every client to be there
            client_manager.wait_for(self.inner.min_available_clients, timeout=86400)
        chosen = self.inner.configure_fit(server_round, parameters, client_manager)
        self.inner.min_available_clients = 1  # from now on, run with whoever is left
        return chosen

    def aggregate_fit(self, server_round, results, failures):
        results = sorted(results, key=lambda r: str(r[1].metrics.get("client", r[0].cid)))
        for failure in failures:
            log.warning("round %d: a client failed to train (%s)", server_round, _why(failure))
        record = self._record(server_round, [r for _, r in results], "train")
        self.writer.add_scalar("federation/clients_trained", len(results), server_round)
        self.rounds[server_round] = {
            "trained": [str(r.metrics.get("client", p.cid)) for p, r in results],
            "failed": len(failures),
        } | record
        parameters, metrics = self.inner.aggregate_fit(server_round, results, failures)
        return parameters, metrics | record

    def configure_evaluate(self, server_round, parameters, client_manager):
        return self.inner.configure_evaluate(server_round, parameters, client_manager)

    def aggregate_evaluate(self, server_round, results, failures):
        results = sorted(results, key=lambda r: str(r[1].metrics.get("client", r[0].cid)))
        for failure in failures:
            log.warning("round %d: a client failed to evaluate (%s)", server_round, _why(failure))
        record, loss = self._record(server_round, [r for _, r in results], "val"), None
        if results:
            total = sum(r.num_examples for _, r in results)
            loss = sum(r.loss * r.num_examples for _, r in results) / total
            self.writer.add_scalar("federation/val_loss", loss, server_round)
            by_client = {  # the global model's score; the fine-tuned one's on the last round
                f"val_{key}_by_client": {
                    str(r.metrics["client"]): r.metrics[key] for _, r in results if key in r.metrics
                }
                for key in ("f1_macro", "personal_f1_macro")
            }
            self.rounds.setdefault(server_round, {}).update(
                {"val_loss": loss} | {k: v for k, v in by_client.items() if v} | record
            )
            shown = " ".join(
                f"{r.metrics['client']} {r.metrics['f1_macro']:.3f}" for _, r in results
            )
            log.info("round %d: val macro-F1 of the global model: %s", server_round, shown)
        self.writer.flush()
        return loss, record

    def evaluate(self, server_round, parameters):
        return self.inner.evaluate(server_round, parameters)

    def _record(self, server_round: int, replies: list, stage: str) -> dict:
        """Each client's numeric metrics, and their series-weighted mean."""
        total = sum(r.num_examples for r in replies) or 1
        means: dict[str, float] = {}
        for reply in replies:
            name = str(reply.metrics.get("client", "?"))
            for key, value in reply.metrics.items():
                if isinstance(value, (int, float)) and key != "client":
                    self.writer.add_scalar(f"clients/{name}/{stage}_{key}", value, server_round)
                    means[f"{stage}_{key}"] = (
                        means.get(f"{stage}_{key}", 0.0) + value * reply.num_examples / total
                    )
        for key, value in means.items():
            self.writer.add_scalar(f"federation/{key}", value, server_round)
        return means

    def close(self) -> None:
        self.writer.close()


def _none(metrics) -> dict:
    return {}


def _why(failure) -> str:
    if isinstance(failure, BaseException):
        return f"{type(failure).__name__}: {failure}"
    return f"status {failure[1].status.message}"
