"""Training reports: figures and projector files in the logs, per-class tables."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cmap.cli import build
from cmap.reports.attention import binned, month_bins, received_attention
from cmap.reports.classification import scheduled
from cmap.reports.tables import per_class_scores, write_csv
from tests.helpers import REPO


def test_per_class_scores_match_a_hand_computed_example(tmp_path):
    # true x predicted; class "c" is never predicted, class "d" is absent from the data.
    confusion = np.array([[3, 1, 0, 0], [2, 4, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    rows = per_class_scores(confusion, ["a", "b", "c", "d"])
    assert [r["support"] for r in rows] == [4, 6, 2, 0]
    assert rows[0]["precision"] == pytest.approx(3 / 6) and rows[0]["recall"] == pytest.approx(
        3 / 4
    )
    assert rows[0]["f1"] == pytest.approx(2 * 0.5 * 0.75 / 1.25)
    assert rows[1]["precision"] == pytest.approx(4 / 6) and rows[1]["recall"] == pytest.approx(
        4 / 6
    )
    assert rows[2] == {"class": "c", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert rows[3]["f1"] == 0.0
    write_csv(rows, tmp_path / "t.csv")
    with open(tmp_path / "t.csv") as f:
        read = list(csv.DictReader(f))
    assert read[0]["class"] == "a" and float(read[0]["f1"]) == pytest.approx(0.6)
    assert list(read[0]) == ["class", "precision", "recall", "f1", "support"]


def test_month_bins_follow_the_calendar_from_the_season_start():
    index, labels = month_bins("11-01", 395)
    assert labels[:3] == ["Nov", "Dec", "Jan"] and labels[-1] == "Nov+1" and len(labels) == 13
    assert index[0] == 0 and index[29] == 0 and index[30] == 1  # Nov has 30 days
    assert index[61] == 2  # Jan 1st
    _, labels = month_bins("09-01", 365)
    assert labels[0] == "Sep" and labels[-1] == "Aug"


def test_binned_attention_sums_to_one_and_lands_in_the_right_month():
    # One sample, 3 valid dates (days 0, 40, 70) + 1 padded; every query attends as given.
    maps = torch.tensor([[0.5, 0.25, 0.25, 0.0]]).repeat(4, 1)[None, None]  # [1, 1, 4, 4]
    mask = torch.tensor([[True, True, True, False]])
    days = torch.tensor([[0, 40, 70, 0]])
    received = received_attention(maps, mask)
    torch.testing.assert_close(received, torch.tensor([[[0.5, 0.25, 0.25, 0.0]]]))
    bins, labels = month_bins("11-01", 395)
    out = binned(received, days, mask, torch.as_tensor(bins), len(labels))
    assert out.shape == (1, 1, 13)
    torch.testing.assert_close(out[0, 0, :3], torch.tensor([0.5, 0.25, 0.25]))  # Nov Dec Jan
    assert float(out.sum()) == pytest.approx(1.0)


def test_attention_is_summarised_relative_to_uniform_attention_over_the_dates():
    from cmap.reports.attention import AttentionByClass

    # Two samples of class 1: dates on days 0, 10 (Nov) and 40 (Dec); the second has only
    # day 0. Uniform attention (every query spreads evenly over the valid dates) scores 1.
    mask = torch.tensor([[True, True, True], [True, False, False]])
    days = torch.tensor([[0, 10, 40], [0, 0, 0]])
    uniform = mask[:, None, None, :].float() / mask.sum(1)[:, None, None, None]
    uniform = uniform.expand(2, 1, 3, 3)
    bins, labels = month_bins("11-01", 395)
    summary = AttentionByClass(3, bins, labels, 100)
    summary.update(uniform, days, mask, torch.tensor([1, 1]))
    seen, ratio, shares, counts = summary.summary()
    assert seen == [1] and counts.tolist() == [2]
    np.testing.assert_allclose(shares[0, :2], [(2 / 3 + 1) / 2, (1 / 3) / 2])
    np.testing.assert_allclose(ratio[0, 0, :2], [1.0, 1.0], rtol=1e-6)
    assert np.isnan(ratio[0, 0, 2:]).all()  # months without dates: no ratio
    # All attention on the December date: 1 / share there, 0 in November's.
    focused = torch.zeros(1, 1, 3, 3)
    focused[..., 2] = 1.0
    summary = AttentionByClass(3, bins, labels, 100)
    summary.update(focused, days[:1], mask[:1], torch.tensor([0]))
    _, ratio, _, _ = summary.summary()
    np.testing.assert_allclose(ratio[0, 0, :2], [0.0, 3.0], rtol=1e-6)


def test_schedule_starts_at_epoch_one():
    assert [e for e in range(25) if scheduled(e, 10)] == [1, 11, 21]
    assert [e for e in range(4) if scheduled(e, 1)] == [1, 2, 3]
    assert not any(scheduled(e, 0) for e in range(5))


@pytest.fixture(scope="module")
def run(synthetic_root, tmp_path_factory):
    """Two epochs with attention and embeddings logged every epoch, then `validate`."""
    work = tmp_path_factory.mktemp("reports")
    common = [
        "--config",
        str(REPO / "configs" / "demo.yaml"),
        "--data.init_args.root",
        str(synthetic_root),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger.init_args.save_dir",
        str(work),
        "--model.init_args.encoder.init_args.n_layers",
        "1",
        "--model.init_args.attention_every_n_epochs",
        "1",
        "--model.init_args.embeddings_every_n_epochs",
        "1",
        "--model.init_args.max_embeddings",
        "30",
        "--model.init_args.figures_dir",
        str(work / "figures"),
    ]
    cli = build([*common, "--trainer.max_epochs", "3"])
    cli.trainer.fit(cli.model, cli.datamodule)
    cli.trainer.validate(cli.model, cli.datamodule)
    return work / "lightning_logs" / "version_0", cli


def test_figures_are_logged_at_the_right_epochs(run):
    version, cli = run
    events = EventAccumulator(str(version), size_guidance={"images": 0}).Reload()
    tags = events.Tags()["images"]
    steps = {tag: [e.step for e in events.Images(tag)] for tag in tags}
    assert steps["train/confusion_matrix"] == [0, 1, 2]
    assert steps["val/confusion_matrix"][:3] == [0, 1, 2]  # + the validate run's
    assert steps["train/label_distribution"] == [0] and steps["val/label_distribution"] == [0]
    assert steps["val/attention"] == [1, 2]  # not at epoch 0
    best = next(c for c in cli.trainer.checkpoint_callbacks if c.monitor).best_model_path
    best_epoch = int(best.split("epoch=")[1].split("-")[0])
    assert steps["val/attention_best"] == [best_epoch]  # the best checkpoint's epoch
    # drawn with the best weights, then the final weights are back in the model
    final = torch.load(version / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    state = cli.model.state_dict()
    assert all(torch.equal(v, final[k]) for k, v in state.items() if k != "output_prior")
    # the validate run recomputes the output prior (same weights; attention's forward path)
    torch.testing.assert_close(state["output_prior"], final["output_prior"])
    figures = sorted(p.name for p in (version.parent.parent / "figures").iterdir())
    assert "val_confusion_matrix_epoch000.png" in figures


def test_projector_files_hold_spherized_embeddings_with_metadata(run):
    version, cli = run
    for step in ("00001", "00002"):
        folder = version / step / "val_embeddings"
        vectors = np.loadtxt(folder / "tensors.tsv", delimiter="\t")
        assert vectors.shape == (30, cli.model.encoder.out_dim)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        lines = (folder / "metadata.tsv").read_text().splitlines()
        assert lines[0].split("\t") == ["label", "predicted", "season", "poi_id"]
        assert len(lines) == 31
        label, predicted, season, _ = lines[1].split("\t")
        assert label in cli.model.classes and predicted in cli.model.classes
        assert season in {"2020", "2021"}
    best = next(c for c in cli.trainer.checkpoint_callbacks if c.monitor).best_model_path
    step = f"{int(best.split('epoch=')[1].split('-')[0]):05d}"
    assert (version / step / "val_embeddings_best" / "tensors.tsv").exists()
    assert not (version / "00000" / "val_embeddings").exists()  # not drawn at epoch 0
    assert "val_embeddings" in (version / "projector_config.pbtxt").read_text()


def test_validate_writes_the_per_class_table(run):
    version, cli = run
    with open(version / "per_class_val.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows] == cli.model.classes
    val = cli.datamodule.datasets["val"].table
    counts = np.bincount(val.labels, minlength=len(rows))
    assert [int(r["support"]) for r in rows] == counts.tolist()


def test_figure_worker_writes_images_and_pngs_and_survives_a_bad_request(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from cmap.reports.worker import FigureWorker

    writer = SummaryWriter(str(tmp_path / "run"))
    worker = FigureWorker(writer, str(tmp_path / "png"))
    classes = ["a", "b"]
    worker.draw("confusion_figure", "val/confusion_matrix", 3, np.eye(2), classes, "t")
    worker.draw("attention_figure", "val/attention", 3, "not an array", ["Jan"], "t")  # fails
    worker.draw("distribution_figure", "val/label_distribution", 0, {"a": 2, "b": 5}, "t")
    with pytest.raises(ValueError, match="unknown figure"):
        worker.draw("pie_chart", "x", 0)
    worker.close()  # waits for the two good figures
    writer.close()
    events = EventAccumulator(str(tmp_path / "run"), size_guidance={"images": 0}).Reload()
    assert sorted(events.Tags()["images"]) == ["val/confusion_matrix", "val/label_distribution"]
    (image,) = events.Images("val/confusion_matrix")
    assert image.step == 3 and image.encoded_image_string.startswith(b"\x89PNG")
    assert image.width > 100 and image.height > 100
    pngs = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert pngs == ["val_confusion_matrix_epoch003.png", "val_label_distribution_epoch000.png"]


def test_figures_the_worker_did_not_draw_are_drawn_at_close(tmp_path):
    from cmap.reports.worker import FigureWorker

    worker = FigureWorker(None, str(tmp_path))
    worker._process.kill()  # as if starved or dead: nothing will be answered
    worker._process.wait()
    for step in range(3):
        worker.draw("distribution_figure", "train/label_distribution", step, {"a": 1}, "t")
    worker.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"train_label_distribution_epoch00{s}.png" for s in range(3)]
    assert all((tmp_path / n).read_bytes().startswith(b"\x89PNG") for n in names)


def test_confusion_figure_says_accuracy_macro_f1_and_counts():
    from cmap.reports.figures import confusion_figure, summary

    counts = np.array([[3, 1], [0, 0]])  # class b never seen nor predicted: F1 0
    assert summary(counts) == "OA 0.750, macro-F1 0.429 (4 samples)"  # F1 a = 6/7
    figure = confusion_figure(counts, ["a", "b"], "val, epoch 3")
    ax = figure.axes[0]
    assert ax.get_title() == "val, epoch 3\nOA 0.750, macro-F1 0.429 (4 samples)"
    assert [t.get_text() for t in ax.texts][:2] == ["0.75\n(3)", "0.25\n(1)"]
    assert figure.axes[1].get_ylabel() == "share of the true class"
