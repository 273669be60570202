"""Multi-view self-supervision: seeded views, the two objectives, the task from the CLI."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cmap.cli import build
from cmap.errors import ConfigError
from cmap.io.checkpoints import encoder_from_checkpoint
from cmap.models import BarlowTwins, MulticlassClassification, NTXent, ProjectionHead
from cmap.tasks import (
    BandScale,
    Contrastive,
    DateJitter,
    DateSubset,
    GaussianNoise,
    TimeCrop,
)
from cmap.tasks.views import make_view, uniform
from tests.helpers import DEMO_CUBE, REPO, encoder


def series_batch(n=6, t=10, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([10, 7, 3, 1, 10, 5])[:n]
    mask = torch.arange(t)[None] < lengths[:, None]
    days = (torch.randint(1, 30, (n, t), generator=g).cumsum(dim=1)) * mask
    ts = torch.rand(n, t, c, generator=g) * mask[..., None]
    index = torch.tensor([40, 7, 13, 2, 99, 5])[:n]
    return {"ts": ts, "positions": days.clone(), "days": days, "mask": mask, "index": index}


def rows(view: dict, order: torch.Tensor) -> dict:
    return {k: v[order] for k, v in view.items()}


def test_counter_based_draws_depend_on_the_series_not_on_the_batch():
    index = torch.tensor([3, 1, 2])
    draws = uniform(7, index, epoch=2, view=1, size=5)
    assert draws.shape == (3, 5) and ((draws >= 0) & (draws < 1)).all()
    torch.testing.assert_close(uniform(7, torch.tensor([1]), 2, 1, 5)[0], draws[1])
    for other in (
        uniform(8, index, 2, 1, 5),
        uniform(7, index, 3, 1, 5),
        uniform(7, index, 2, 0, 5),
    ):
        assert not torch.equal(other, draws)
    many = uniform(0, torch.arange(2000), 0, 0, 50)
    assert (
        abs(float(many.mean()) - 0.5) < 0.01 and abs(float(many.std()) - math.sqrt(1 / 12)) < 0.01
    )


@pytest.mark.parametrize(
    "augmentation",
    [DateSubset(0.5), TimeCrop(0.5), GaussianNoise(0.1), BandScale(0.2), DateJitter(4)],
    ids=lambda a: type(a).__name__,
)
def test_views_are_the_same_whatever_the_batch_order_and_follow_the_seed(augmentation):
    batch = series_batch()
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    torch.manual_seed(11)  # seed None: the run's seed
    view = make_view([augmentation], batch, epoch=1, number=0)
    shuffled = make_view([augmentation], rows(batch, order), epoch=1, number=0)
    for key in view:
        torch.testing.assert_close(shuffled[key], view[key][order])
    again = make_view([augmentation], batch, epoch=1, number=0)
    assert all(torch.equal(again[k], view[k]) for k in view)
    other_view = make_view([augmentation], batch, epoch=1, number=1)
    assert any(not torch.equal(other_view[k], view[k]) for k in view)
    torch.manual_seed(12)
    reseeded = make_view([augmentation], batch, epoch=1, number=0)
    assert any(not torch.equal(reseeded[k], view[k]) for k in view)
    augmentation.seed = 5  # a fixed seed does not follow the run's
    fixed = make_view([augmentation], batch, 1, 0)
    torch.manual_seed(11)
    assert all(torch.equal(make_view([augmentation], batch, 1, 0)[k], fixed[k]) for k in view)
    augmentation.seed = None


def test_date_subset_keeps_the_share_of_valid_dates_and_a_minimum():
    batch = series_batch()
    view = DateSubset(keep=0.6, min_dates=2)(dict(batch), batch["index"], 0, 0)
    kept = view["mask"].sum(dim=1).tolist()
    assert kept == [6, 4, 2, 1, 6, 3]  # round(0.6 n), at least 2 (or all of a shorter series)
    assert not (view["mask"] & ~batch["mask"]).any()  # only valid dates
    dropped = batch["mask"] & ~view["mask"]
    assert (view["ts"][dropped] == 0).all() and (view["days"][dropped] == 0).all()
    torch.testing.assert_close(view["ts"][view["mask"]], batch["ts"][view["mask"]])


def test_time_crop_keeps_one_run_of_consecutive_dates():
    batch = series_batch()
    batch["days"][0] = torch.tensor([50, 10, 90, 30, 70, 20, 60, 40, 80, 100])  # out of order
    for number in range(5):
        view = TimeCrop(share=0.4)(dict(batch), batch["index"], 0, number)
        assert view["mask"].sum(dim=1).tolist() == [4, 3, 1, 1, 4, 2]
        days = sorted(batch["days"][0][view["mask"][0]].tolist())
        assert days == list(range(days[0], days[0] + 40, 10))  # consecutive in time


def test_noise_scaling_and_jitter_on_many_series():
    n, t = 4000, 6
    mask = torch.ones(n, t, dtype=torch.bool)
    mask[:, -1] = False
    days = torch.arange(0, 60, 10).repeat(n, 1) * mask
    batch = {"ts": torch.ones(n, t, 2) * mask[..., None], "days": days, "positions": days.clone()}
    batch |= {"mask": mask, "index": torch.arange(n)}
    noisy = GaussianNoise(std=0.1)(dict(batch), batch["index"], 0, 0)["ts"]
    assert abs(float((noisy[mask] - 1).std()) - 0.1) < 0.005 and (noisy[~mask] == 0).all()
    scaled = BandScale(std=0.2)(dict(batch), batch["index"], 0, 0)["ts"]
    factors = scaled[:, 0, :]  # one factor per series and band, the same at every date
    torch.testing.assert_close(scaled[:, :5], factors[:, None, :].expand(-1, 5, -1))
    assert abs(float(factors.std()) - 0.2) < 0.01
    jittered = DateJitter(days=3)(dict(batch), batch["index"], 0, 0)
    shift = (jittered["days"] - days)[:, 1:5]  # away from the season start
    assert (
        shift.min() == -3 and shift.max() == 3 and set(shift.unique().tolist()) == set(range(-3, 4))
    )
    assert (jittered["days"] >= 0).all() and torch.equal(jittered["positions"], jittered["days"])
    assert (jittered["days"][~mask] == 0).all()
    thermal = batch | {"positions": days.float() * 12.0}  # 12 degree days per day
    moved = DateJitter(days=3)(thermal, batch["index"], 0, 0)
    torch.testing.assert_close(moved["positions"], moved["days"].float() * 12.0)


def test_ntxent_matches_a_hand_computed_case():
    z = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, 2.0]]])  # [V 2, N 2, P 2]
    flat = F.normalize(z.reshape(4, 2), dim=1)
    s = flat @ flat.T / 0.5
    expected = 0.0
    for i, positive in enumerate([2, 3, 0, 1]):
        others = [j for j in range(4) if j != i]
        expected += -(s[i, positive] - torch.logsumexp(s[i, others], dim=0)) / 4
    torch.testing.assert_close(NTXent(0.5)(z), expected)
    # three views: two positives each, their log-likelihoods averaged
    z3 = torch.randn(3, 4, 8, generator=torch.Generator().manual_seed(0))
    flat = F.normalize(z3.reshape(12, 8), dim=1)
    log_p = (flat @ flat.T / 0.1).fill_diagonal_(float("-inf")).log_softmax(dim=1)
    expected = -torch.stack(
        [(log_p[i, (i + 4) % 12] + log_p[i, (i + 8) % 12]) / 2 for i in range(12)]
    ).mean()
    torch.testing.assert_close(NTXent(0.1)(z3), expected)


def test_barlow_twins_matches_a_hand_computed_case():
    a = torch.tensor([[1.0, 2.0], [-1.0, 0.0], [0.0, -2.0]])
    b = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [0.0, 0.0]])
    standard = [(x - x.mean(0)) / x.std(0) for x in (a, b)]
    c = standard[0].T @ standard[1] / 3
    expected = (torch.diagonal(c) - 1).pow(2).sum() + 0.1 * (c[0, 1] ** 2 + c[1, 0] ** 2)
    torch.testing.assert_close(BarlowTwins(0.1)(torch.stack([a, b])), expected)
    assert float(BarlowTwins(0.1)(torch.stack([standard[0], standard[0]]))) < float(expected)
    with pytest.raises(ConfigError, match="at least 2 series"):
        BarlowTwins()(torch.zeros(2, 1, 4))


def test_bad_contrastive_settings_are_refused():
    with pytest.raises(ConfigError, match="n_views >= 2"):
        Contrastive(encoder(), ProjectionHead(16, [8]), n_views=1)
    with pytest.raises(ConfigError, match="pool"):
        Contrastive(encoder(), torch.nn.Linear(16, 8))
    with pytest.raises(ConfigError, match="in_dim=32"):
        Contrastive(encoder(), ProjectionHead(32, [8]))
    for bad in (lambda: DateSubset(0), lambda: TimeCrop(1.5), lambda: GaussianNoise(-1)):
        with pytest.raises(ConfigError):
            bad()
    assert isinstance(Contrastive(encoder(), MulticlassClassification(16, 3)).criterion, NTXent)


def fit(tmp_path, *extra):
    cli = build([
        *("--config", str(REPO / "configs" / "contrastive.yaml")),
        *("--trainer.max_epochs", "2", "--trainer.limit_train_batches", "3"),
        *("--trainer.limit_val_batches", "2", "--trainer.enable_progress_bar", "false"),
        *("--trainer.logger.init_args.save_dir", str(tmp_path)),
        *("--model.init_args.views_every_n_epochs", "1"),
        *("--model.init_args.embeddings_every_n_epochs", "1"),
        *extra,
    ])  # fmt: skip
    cli.trainer.fit(cli.model, cli.datamodule)
    return cli


@pytest.mark.parametrize("objective", ["NTXent", "BarlowTwins"])
def test_contrastive_pretrains_on_samples_logs_views_and_its_encoder_is_extracted(
    tmp_path, synthetic_root, objective
):
    cli = fit(
        tmp_path,
        *("--data.init_args.root", str(synthetic_root), "--model.init_args.criterion", objective),
    )
    assert type(cli.model.criterion) is {"NTXent": NTXent, "BarlowTwins": BarlowTwins}[objective]
    metrics = cli.trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss_epoch"]) and torch.isfinite(metrics["val/loss"])
    run = tmp_path / "contrastive" / "version_0"
    events = EventAccumulator(str(run))
    events.Reload()
    assert "val/views" in events.Tags()["images"]
    metadata = (run / "00001" / "val_embeddings" / "metadata.tsv").read_text().splitlines()
    assert metadata[0].split("\t") == ["label", "season", "index"] and len(metadata) > 2
    tensors, spec = encoder_from_checkpoint(run / "checkpoints" / "best.ckpt")
    model = cli.model.encoder.state_dict()
    assert set(tensors) == set(model) and spec["class_path"].endswith("TransformerEncoder")


def test_contrastive_validation_views_repeat_every_epoch(tmp_path, synthetic_root):
    cli = fit(tmp_path, "--data.init_args.root", str(synthetic_root))
    batch = next(iter(cli.datamodule.val_dataloader()))
    model = cli.model
    first = model.views(batch, "val")
    model.trainer.fit_loop.epoch_progress.current.completed += 3  # a later epoch
    assert all(torch.equal(a["mask"], b["mask"]) for a, b in zip(first, model.views(batch, "val")))
    assert not torch.equal(model.views(batch, "train")[0]["mask"], first[0]["mask"])


def test_contrastive_pretrains_on_cube_pixels(tmp_path):
    cli = fit(
        tmp_path,
        *("--data", "cmap.data.CubeDataModule", "--data.cube", str(DEMO_CUBE)),
        *("--data.window_size", "16", "--data.batch_size", "64"),
    )
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss_epoch"])
    assert cli.model.bands == cli.datamodule.bands
