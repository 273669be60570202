"""`cmap federate` in one process: two demo regions as clients, two rounds."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cmap.cli import build
from cmap.commands import extract
from cmap.data.demo import Region, generate
from cmap.federated import federate
from cmap.federated.client import CmapClient, KeptOptimizer
from cmap.main import main
from cmap.tasks import Classifier
from tests.helpers import CONFIGS

SMALL = [
    *("--config", str(CONFIGS / "classifier.yaml")),
    *("--model.init_args.encoder.init_args.n_layers", "1"),
    *("--trainer.accelerator", "cpu"),
]


@pytest.fixture(scope="module")
def regions(tmp_path_factory):
    root = tmp_path_factory.mktemp("regions")
    generate(
        root / "north", points=40, seasons=[2019], cube_size=0, seed=1, region=Region(name="n")
    )
    south = Region(warmth=2.0, sowing_shift=-10, soil=1.2, name="s")
    generate(root / "south", points=40, seasons=[2019], cube_size=0, seed=2, region=south)
    return root


def clients(regions, south_extra=(), north_extra=()):
    return {
        "north": [*SMALL, "--data.init_args.root", str(regions / "north"), *north_extra],
        "south": [*SMALL, "--data.init_args.root", str(regions / "south"), *south_extra],
    }


def state(path):
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def test_two_clients_two_rounds_end_to_end(regions, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = federate(clients(regions), out=tmp_path / "fed", rounds=2, local_epochs=1)
    assert run == tmp_path / "fed" / "version_0"
    rounds = json.loads((run / "rounds.json").read_text())
    assert list(rounds) == ["1", "2"]
    for record in rounds.values():
        assert record["trained"] == ["north", "south"] and record["failed"] == 0
        assert set(record["val_f1_macro_by_client"]) == {"north", "south"}
        assert 0 <= record["val_f1_macro"] <= 1
    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"clients/north/val_f1_macro", "clients/south/train_loss"} <= tags
    assert {"federation/val_f1_macro", "federation/clients_trained"} <= tags
    assert [e.step for e in events.Scalars("clients/south/val_f1_macro")] == [1, 2]
    north, south = (run / "clients" / n / "global.ckpt" for n in ("north", "south"))
    a, b = state(north), state(south)
    shared = [k for k in a if k.startswith(("encoder.", "decoder."))]
    assert shared and all(torch.equal(a[k], b[k]) for k in shared)  # one global model
    # a normal cmap checkpoint: test and extract take it
    main(["test", *clients(regions)["north"], "--ckpt_path", str(north)])
    extract(north, tmp_path / "encoder")
    assert (tmp_path / "encoder" / "encoder.safetensors").is_file()
    assert (run / "federation.yaml").read_text().startswith("clients:")
    assert (run / "clients" / "north" / "per_class_val.csv").is_file()
    assert not (tmp_path / "per_class_val.csv").exists()  # nothing in the working folder


def test_a_seeded_simulation_repeats_exactly(regions, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = [
        federate(clients(regions), out=tmp_path / "fed", rounds=2, strategy="fedprox", seed=3)
        for _ in range(2)
    ]
    first, second = (state(r / "clients" / "south" / "global.ckpt") for r in runs)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert json.loads((runs[0] / "rounds.json").read_text())["2"]["train_proximal"] > 0


def test_a_client_failing_mid_run_does_not_stop_it(regions, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit = CmapClient.fit

    def flaky(self, parameters, config):
        if self.name == "south" and int(config["round"]) == 2:
            raise RuntimeError("south lost its connection")
        return fit(self, parameters, config)

    monkeypatch.setattr(CmapClient, "fit", flaky)
    run = federate(clients(regions), out=tmp_path / "fed", rounds=3)
    rounds = json.loads((run / "rounds.json").read_text())
    assert rounds["2"]["trained"] == ["north"] and rounds["2"]["failed"] == 1
    assert rounds["3"]["trained"] == ["north", "south"]
    assert (run / "clients" / "north" / "global.ckpt").is_file()


def test_own_heads_when_the_clients_classes_differ(regions, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    south = ["--data.init_args.classes", "[other, ble_tendre, mais]"]
    run = federate(
        clients(regions, south_extra=south), out=tmp_path / "fed", rounds=2, share=["encoder"]
    )
    a, b = (state(run / "clients" / n / "global.ckpt") for n in ("north", "south"))
    encoder = [k for k in a if k.startswith("encoder.")]
    assert all(torch.equal(a[k], b[k]) for k in encoder)
    heads = [k for k in a if k.startswith("decoder.") and k.endswith("weight")]
    assert a[heads[-1]].shape[0] == 7 and b[heads[-1]].shape[0] == 3


def test_a_shared_head_takes_the_union_of_the_classes(regions, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    north = ["--data.init_args.classes", "[other, ble_tendre, mais]"]
    south = ["--data.init_args.classes", "[other, colza, mais]"]
    run = federate(clients(regions, south, north), out=tmp_path / "fed", rounds=1)
    for name in ("north", "south"):
        checkpoint = torch.load(
            run / "clients" / name / "global.ckpt", map_location="cpu", weights_only=False
        )
        assert checkpoint["hyper_parameters"]["classes"] == ["other", "ble_tendre", "mais", "colza"]


def test_the_shipped_federation_config_parses(capsys):
    with pytest.raises(SystemExit):
        main(["federate", "--config", str(CONFIGS / "federated.yaml"), "--print_config"])
    printed = capsys.readouterr().out
    assert "strategy: fedavg" in printed and "demo_regions/south" in printed
    assert "share:\n- encoder\n- decoder" in printed


def val_f1(args: list[str], checkpoint) -> float:
    cli = build(args)
    model = Classifier.load_from_checkpoint(checkpoint, map_location="cpu")
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (scores,) = trainer.validate(model, datamodule=cli.datamodule, verbose=False)
    return scores["val/f1_macro"]


def test_best_round_and_personal_fine_tuning(regions, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = clients(regions)
    run = federate(args, out=tmp_path / "fed", rounds=3, personal_epochs=2, keep_optimizer=True)
    rounds = json.loads((run / "rounds.json").read_text())
    folder = run / "clients" / "south"
    best = max(r["val_f1_macro_by_client"]["south"] for r in rounds.values())
    assert val_f1(args["south"], folder / "best.ckpt") == pytest.approx(best, abs=1e-6)
    # fine-tuned on south alone from the last global model: its own encoder, kept at its
    # best val epoch, a normal checkpoint over the same classes
    tuned, final = state(folder / "personal.ckpt"), state(folder / "global.ckpt")
    assert not all(torch.equal(tuned[k], final[k]) for k in final if k.startswith("encoder."))
    personal = rounds["3"]["val_personal_f1_macro_by_client"]["south"]
    assert val_f1(args["south"], folder / "personal.ckpt") == pytest.approx(personal, abs=1e-6)
    main(["test", *args["south"], "--ckpt_path", str(folder / "personal.ckpt")])


def test_kept_optimizer_state_carries_to_the_next_round():
    net = torch.nn.Linear(2, 1)
    first = torch.optim.AdamW(net.parameters(), lr=0.1)
    net(torch.ones(1, 2)).sum().backward()
    first.step()
    kept = KeptOptimizer(None)
    kept.on_train_end(SimpleNamespace(optimizers=[first]), None)
    second = torch.optim.AdamW(net.parameters(), lr=0.1)  # a new round's optimizer
    kept.on_train_start(SimpleNamespace(optimizers=[second]), None)
    moments = [second.state[p]["exp_avg"] for p in net.parameters()]
    assert all(torch.equal(m, first.state[p]["exp_avg"]) for m, p in zip(moments, net.parameters()))
    assert float(second.state[net.weight]["step"]) == 1
