"""Federated training of N clients in one process: Flower's own server loop, with clients
called in place instead of over the network (no Ray), one at a time, so a seeded run repeats."""

from __future__ import annotations

import logging
import random

from flwr.common import DisconnectRes, ndarrays_to_parameters
from flwr.server import Server, SimpleClientManager
from flwr.server.client_proxy import ClientProxy

log = logging.getLogger(__name__)


class LocalProxy(ClientProxy):
    """A client living in this process, as Flower's server sees a remote one."""

    def __init__(self, cid: str, client):
        super().__init__(cid)
        self.client = client.to_client()

    def get_properties(self, ins, timeout, group_id):
        return self.client.get_properties(ins)

    def get_parameters(self, ins, timeout, group_id):
        return self.client.get_parameters(ins)

    def fit(self, ins, timeout, group_id):
        return self.client.fit(ins)

    def evaluate(self, ins, timeout, group_id):
        return self.client.evaluate(ins)

    def reconnect(self, ins, timeout, group_id):
        return DisconnectRes(reason="local client")


def run_local(clients: dict, strategy, rounds: int, seed: int) -> tuple:
    """Run `rounds` rounds of `strategy` (a `Recorded` strategy) over `clients` (name ->
    `CmapClient`, all in this process). The first client's shared tensors start the global
    model. Returns Flower's History and the final global tensors."""
    random.seed(seed)  # Flower's client sampling
    manager = SimpleClientManager()
    for name, client in clients.items():
        manager.register(LocalProxy(name, client))
    first = next(iter(clients.values()))
    if getattr(strategy.inner, "initial_parameters", None) is None:
        strategy.inner.initial_parameters = ndarrays_to_parameters(first.get_parameters({}))
    server = Server(client_manager=manager, strategy=strategy)
    server.set_max_workers(1)  # one client at a time: the same order and numbers every run
    history, seconds = server.fit(num_rounds=rounds, timeout=None)
    log.info("federated training: %d rounds in %.0f s", rounds, seconds)
    return history, server.parameters
