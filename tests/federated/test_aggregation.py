"""The server's arithmetic on hand-made weights: FedAvg, FedProx and FedAvgM through cmap's
`Recorded` wrapper, and the tensors a client shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server import SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from torch import nn

from cmap.errors import ConfigError
from cmap.federated.proximal import ProximalTerm
from cmap.federated.shared import SharedParameters
from cmap.federated.strategy import Recorded, make_strategy

OK = Status(code=Code.OK, message="")


class Proxy(ClientProxy):
    def get_properties(self, *a): ...
    def get_parameters(self, *a): ...
    def fit(self, *a): ...
    def evaluate(self, *a): ...
    def reconnect(self, *a): ...


def reply(name: str, arrays: list[np.ndarray], n: int):
    return Proxy(name), FitRes(OK, ndarrays_to_parameters(arrays), n, {"client": name})


def aggregate(strategy, server_round, replies, tmp_path):
    recorded = Recorded(strategy, str(tmp_path))
    parameters, metrics = recorded.aggregate_fit(server_round, replies, [])
    recorded.close()
    return parameters_to_ndarrays(parameters), metrics


A = [np.array([1.0, 2.0]), np.array([[0.0]])]
B = [np.array([3.0, 6.0]), np.array([[4.0]])]


@pytest.mark.parametrize("name", ["fedavg", "fedprox"])
def test_fedavg_and_fedprox_average_weighted_by_series(name, tmp_path):
    strategy = make_strategy(name, rounds=3, local_epochs=1, seed=0, clients=2)
    # 1 series at A, 3 at B: (A + 3B) / 4, whatever order the replies come in
    out, _ = aggregate(strategy, 1, [reply("b", B, 3), reply("a", A, 1)], tmp_path)
    np.testing.assert_allclose(out[0], [2.5, 5.0])
    np.testing.assert_allclose(out[1], [[3.0]])


def test_fedprox_sends_mu_and_round_settings(tmp_path):
    strategy = make_strategy(
        "fedprox", rounds=3, local_epochs=2, seed=7, clients=1, proximal_mu=0.5
    )
    manager = SimpleClientManager()
    manager.register(Proxy("a"))
    recorded = Recorded(strategy, str(tmp_path))
    ((_, ins),) = recorded.configure_fit(2, ndarrays_to_parameters(A), manager)
    assert ins.config == {
        "round": 2, "local_epochs": 2, "seed": 7, "keep_optimizer": 0, "proximal_mu": 0.5
    }  # fmt: skip
    ((_, ins),) = recorded.configure_evaluate(3, ndarrays_to_parameters(A), manager)
    assert ins.config == {"round": 3, "final": 1}  # the last round: clients save the model
    assert recorded.min_available_clients == 1  # after round 1 nobody is waited for
    recorded.close()


def momentum(w0: list[np.ndarray], clients: int, tmp_path) -> Recorded:
    """FedAvgM from `w0`, server step 0.5, momentum 0.9, recorded."""
    strategy = make_strategy(
        "fedavgm", rounds=2, local_epochs=1, seed=0, clients=clients,
        server_learning_rate=0.5, server_momentum=0.9,
        initial_parameters=ndarrays_to_parameters(w0),
    )  # fmt: skip
    return Recorded(strategy, str(tmp_path))


def test_fedavgm_server_momentum_by_hand(tmp_path):
    w0 = [np.array([10.0])]
    recorded = momentum(w0, 1, tmp_path)
    # round 1: the clients' mean is 6 -> pseudo-gradient 4, momentum 4 -> w1 = 10 - 0.5 * 4 = 8
    p1, _ = recorded.aggregate_fit(1, [reply("a", [np.array([6.0])], 1)], [])
    assert parameters_to_ndarrays(p1)[0] == pytest.approx([8.0])
    # round 2: mean 7 -> gradient 1, momentum 0.9 * 4 + 1 = 4.6 -> w2 = 8 - 0.5 * 4.6 = 5.7
    p2, _ = recorded.aggregate_fit(2, [reply("a", [np.array([7.0])], 1)], [])
    assert parameters_to_ndarrays(p2)[0] == pytest.approx([5.7])
    recorded.close()


def test_fedavgm_momentum_leaves_buffers_at_the_plain_mean(tmp_path):
    w0 = [np.array([10.0]), np.array([1.0])]  # a weight, a running variance
    recorded = momentum(w0, 2, tmp_path)

    def replies(a: float, b: float, var_a: float, var_b: float) -> list:
        out = [reply("a", [np.array([a]), np.array([var_a])], 1)]
        out += [reply("b", [np.array([b]), np.array([var_b])], 1)]
        for _, res in out:
            res.metrics["buffers"] = "1"  # position 1 is a buffer
        return out

    # the weight moves as in the hand-made FedAvgM case (mean 6 -> 8, then mean 7 -> 5.7)
    p1, _ = recorded.aggregate_fit(1, replies(5.0, 7.0, 0.5, 0.1), [])
    np.testing.assert_allclose(np.concatenate(parameters_to_ndarrays(p1)), [8.0, 0.3])
    p2, _ = recorded.aggregate_fit(2, replies(6.0, 8.0, 0.02, 0.02), [])
    # momentum on the variance would give 0.3 - 0.5 * (0.9 * 0.7 + 0.28) < 0
    np.testing.assert_allclose(np.concatenate(parameters_to_ndarrays(p2)), [5.7, 0.02])
    recorded.close()


def test_failures_are_counted_and_the_rest_aggregated(tmp_path):
    strategy = make_strategy("fedavg", rounds=1, local_epochs=1, seed=0, clients=2)
    recorded = Recorded(strategy, str(tmp_path))
    parameters, metrics = recorded.aggregate_fit(1, [reply("a", A, 1)], [RuntimeError("lost")])
    np.testing.assert_allclose(parameters_to_ndarrays(parameters)[0], A[0])
    assert recorded.rounds[1]["trained"] == ["a"] and recorded.rounds[1]["failed"] == 1
    recorded.close()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
        self.decoder = nn.Linear(3, 4)


def test_shared_parameters_pick_modules_and_round_integer_buffers():
    torch.manual_seed(0)
    net = Net()
    shared = SharedParameters(net, ["encoder"])
    assert shared.names == [
        "encoder.0.weight", "encoder.0.bias", "encoder.1.weight", "encoder.1.bias",
        "encoder.1.running_mean", "encoder.1.running_var", "encoder.1.num_batches_tracked",
    ]  # fmt: skip
    arrays = [np.full(a.shape, 0.5, dtype=np.float64) for a in shared.get()]
    arrays[-1] = np.array(2.6)  # an average of batch counts
    head = net.decoder.weight.detach().clone()
    shared.set(arrays)
    assert torch.equal(net.encoder[0].weight, torch.full((3, 2), 0.5))
    assert net.encoder[1].num_batches_tracked.item() == 3
    assert net.encoder[1].num_batches_tracked.dtype == torch.long
    assert torch.equal(net.decoder.weight, head)  # not shared: untouched
    assert set(shared.tensors()) == {
        n for n in shared.names if "running" not in n and "num" not in n
    }
    assert shared.buffers() == "4 5 6"  # what the server's momentum leaves alone


def test_batch_norm_layers_can_stay_with_each_client():
    shared = SharedParameters(Net(), ["encoder", "decoder"], local_batch_norm=True)
    assert shared.names == ["encoder.0.weight", "encoder.0.bias", "decoder.weight", "decoder.bias"]


def test_shared_parameters_refuse_other_shapes_and_unknown_modules():
    net = Net()
    shared = SharedParameters(net, ["encoder", "decoder"], "client x")
    arrays = shared.get()
    arrays[-2] = np.zeros((5, 3), dtype=np.float32)  # a head over 5 classes, not 4
    with pytest.raises(ConfigError, match="client x.*decoder.weight.*same classes"):
        shared.set(arrays)
    with pytest.raises(ConfigError, match="share names.*head.*its modules"):
        SharedParameters(net, ["head"])


def test_proximal_term_adds_mu_times_the_distance_to_the_global_weights():
    net = Net()
    shared = SharedParameters(net, ["encoder"])
    anchors = {n: p.detach() + 1.0 for n, p in shared.tensors().items()}  # w - w_g = -1
    term = ProximalTerm(0.2, anchors)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    term.on_after_backward(None, net)
    assert torch.allclose(net.encoder[0].weight.grad, torch.full((3, 2), -0.2))
    assert torch.equal(net.decoder.weight.grad, torch.zeros(4, 3))  # only shared parameters
    assert term.penalty(net) == pytest.approx(0.5 * 0.2 * (6 + 3 + 3 + 3))


def test_round_schedule_starts_the_schedule_at_the_rounds_epoch():
    from types import SimpleNamespace

    from cmap.federated.proximal import RoundSchedule
    from cmap.tasks.optim import WarmupExponentialLR, warmup_exponential

    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = WarmupExponentialLR(optimizer, min_lr=1e-4, warmup_epochs=3, decay=0.9)
    trainer = SimpleNamespace(lr_scheduler_configs=[SimpleNamespace(scheduler=scheduler)])
    RoundSchedule(offset=5).on_train_start(trainer, None)  # round 3 of 2 local epochs + 1
    assert scheduler.last_epoch == 5
    assert optimizer.param_groups[0]["lr"] == pytest.approx(
        warmup_exponential(5, 1e-4, 0.1, 3, 0.9)
    )
