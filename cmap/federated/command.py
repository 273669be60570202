"""`cmap federate`: federated training of cmap clients with Flower, in one process (a
simulation) or as a server and clients on separate machines."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

import yaml

from cmap.errors import ConfigError

log = logging.getLogger(__name__)
SHARE = ["encoder", "decoder"]


def _flower() -> None:
    """Flower is an optional package: a one-line error saying how to get it."""
    try:
        import flwr  # noqa: F401
    except ImportError:
        raise ConfigError('federated training needs Flower: pip install -e ".[federated]"') from (
            None
        )


def next_version(folder: Path) -> Path:
    """`folder/version_N` for the first N not taken (made here, so never reused)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        try:
            (folder / f"version_{n}").mkdir()
            return folder / f"version_{n}"
        except FileExistsError:
            n += 1


def with_classes(args: list[str], classes: list[str] | None) -> list[str]:
    return [*args, "--data.init_args.classes", json.dumps(classes)] if classes else list(args)


def build_clients(
    clients: dict[str, list[str]],
    share: list[str],
    run: Path,
    classes: list[str] | None,
    local_bn: bool,
) -> dict:
    """Every client; when the head is shared, all of them over the same classes (`classes`,
    or the union of the clients' own, matched by name), so each logit means one class."""
    from cmap.federated.client import CmapClient

    fixed = classes if "decoder" in share else None
    built = {
        n: CmapClient(n, with_classes(a, fixed), run / "clients" / n, share, local_bn)
        for n, a in clients.items()
    }
    if "decoder" in share and not classes:
        union = list(dict.fromkeys(c for client in built.values() for c in client.classes))
        for name, client in built.items():
            if client.classes != union:
                log.info("client %s: classes %s -> %s (the union)", name, client.classes, union)
                args = with_classes(clients[name], union)
                built[name] = CmapClient(name, args, run / "clients" / name, share, local_bn)
    return built


def federate(
    clients: dict[str, list[str]],
    out: Path = Path("lightning_logs/federated"),
    strategy: Literal["fedavg", "fedprox", "fedavgm"] = "fedavg",
    rounds: int = 10,
    local_epochs: int = 1,
    share: list[str] = SHARE,  # noqa: B006 (never modified)
    proximal_mu: float = 0.01,
    server_learning_rate: float = 1.0,
    server_momentum: float = 0.9,
    fraction_fit: float = 1.0,
    seed: int = 0,
    classes: list[str] | None = None,
    batch_norm: Literal["shared", "local"] = "shared",
    keep_optimizer: bool = False,
    personal_epochs: int = 0,
    serve: str | None = None,
    round_timeout_s: float | None = None,
    client: str | None = None,
    server: str = "127.0.0.1:8080",
    connect_s: float = 120,
) -> Path:
    """Federated training (Flower): FedAvg, FedProx or FedAvgM over cmap clients.

    By default every client runs in this process, one after the other (a seeded simulation).
    Over a network, the same file serves both sides: `--serve 0.0.0.0:8080` runs the server
    only, and `--client NAME --server HOST:8080` runs client NAME, on its own machine.
    Writes `out/version_N/`: TensorBoard logs (per round and client), `federation.yaml`,
    `rounds.json` and, for each client, `clients/<name>/global.ckpt` (the final global model
    with the client's unshared parts: a normal cmap checkpoint; a networked client writes
    `out/clients/<name>/version_N/global.ckpt`).

    Args:
        clients: name -> that client's cmap arguments (`[--config, its.yaml, ...]`).
        out: the runs' folder.
        strategy: fedavg (McMahan et al. 2017), fedprox (its proximal term on the shared
            tensors, Li et al. 2020) or fedavgm (server momentum, Hsu et al. 2019).
        rounds: communication rounds.
        local_epochs: epochs each client trains per round.
        share: modules averaged (`[encoder]`: every client keeps its own head, e.g. when their
            classes differ; `[encoder, decoder]`: the head too, over the union of classes).
        proximal_mu: FedProx's mu.
        server_learning_rate, server_momentum: FedAvgM's server step.
        fraction_fit: share of the clients that train each round.
        seed: seed of the rounds (client sampling, each client's local epochs).
        classes: the classes of a shared head, in logit order (default in a simulation: the
            union of the clients' classes; needed with `serve`).
        batch_norm: "local" keeps each client's batch-norm layers (FedBN, Li et al. 2021: for
            clients whose inputs differ); "shared" averages them with the rest.
        keep_optimizer: each client carries its optimizer's state (Adam's moments) from
            round to round; by default it starts afresh every round (which scored better in
            benchmarks/federated.py).
        personal_epochs: after the last round, each client fine-tunes the global model on
            its own data for this many epochs and keeps its best val epoch as
            `personal.ckpt` (local adaptation; 0: none). It runs within the last round's
            evaluation: a `round_timeout_s` must leave time for it.
        serve: address to serve on; none: simulate.
        round_timeout_s: with `serve`, a round waits at most this for its clients.
        client: run as this client of `clients` (its own arguments), connecting to `server`.
        server: the server's address, for `client`.
        connect_s: a client keeps trying to reach the server for this long.
    """
    settings = json.loads(json.dumps(dict(locals()), default=str))  # the arguments only
    _flower()
    from cmap.federated.simulation import run_local
    from cmap.federated.strategy import Recorded, make_strategy

    if not clients:
        raise ConfigError("federate: no clients (clients: {name: [cmap arguments]})")
    if client:
        local_bn = batch_norm == "local"
        return run_client(client, clients, share, classes, local_bn, out, server, connect_s)
    if serve and "decoder" in share and not classes:
        raise ConfigError("federate --serve with a shared head needs `classes` (the same for all)")
    run = next_version(Path(out))
    (run / "federation.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    inner = make_strategy(
        strategy,
        rounds,
        local_epochs,
        seed,
        len(clients),
        fraction_fit,
        proximal_mu,
        server_learning_rate,
        server_momentum,
        keep_optimizer=keep_optimizer,
        personal_epochs=personal_epochs,
    )
    recorded = Recorded(inner, str(run))
    try:
        if serve:
            from flwr.server import ServerConfig, start_server

            start_server(
                server_address=serve,
                config=ServerConfig(num_rounds=rounds, round_timeout=round_timeout_s),
                strategy=recorded,
            )
        else:
            logging.getLogger("flwr").setLevel(logging.WARNING)  # cmap logs each round itself
            built = build_clients(clients, list(share), run, classes, batch_norm == "local")
            run_local(built, recorded, rounds, seed)
    finally:
        recorded.close()
    (run / "rounds.json").write_text(json.dumps(recorded.rounds, indent=2) + "\n")
    print(f"federated run: {run}")
    return run


def run_client(
    name: str,
    clients: dict,
    share: list[str],
    classes,
    local_bn: bool,
    out: Path,
    server: str,
    connect_s: float,
) -> Path:
    """This process as client `name` of a federation served at `server`."""
    from flwr.client import start_client

    from cmap.federated.client import CmapClient

    if name not in clients:
        raise ConfigError(f"federate: no client {name!r} in clients ({sorted(clients)})")
    folder = next_version(Path(out) / "clients" / name)
    args = with_classes(clients[name], classes if "decoder" in share else None)
    client = CmapClient(name, args, folder, share, local_bn)
    start_client(
        server_address=server, client=client.to_client(), insecure=True, max_wait_time=connect_s
    )
    return folder
