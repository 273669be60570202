"""Federated training of cmap clients with Flower (an optional package: the `federated`
extra): FedAvg, FedProx and FedAvgM over shared modules, in one process or as a server and
clients. The modules importing Flower are imported by the commands when they run."""

from cmap.federated.command import federate

__all__ = ["federate"]
