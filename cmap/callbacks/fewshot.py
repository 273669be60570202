"""Few-shot quality of the encoder as it trains (e.g. while pretraining, as in EASY)."""

from __future__ import annotations

from typing import Literal

import pytorch_lightning as pl

from cmap.fewshot.episodes import evaluate_episodes, sample_episodes
from cmap.fewshot.features import labelled_split, pooling, split_features


class FewShotEvaluation(pl.Callback):
    """After validation epochs 0, n, 2n, ..., scores the encoder's frozen features with a
    nearest-prototype classifier on seeded N-way K-shot episodes of a labelled split (the same
    episodes every time), logged as `fewshot/{K}shot_f1_macro` and `..._accuracy`, with their
    95 % confidence half-widths (`..._ci95`).

    Args:
        k_shot: support series per class, one score per value.
        n_way: classes per episode (None: every class with more than K series).
        n_query: query series per class and episode (fewer where a class has fewer).
        episodes: episodes per K.
        seed: seed of the episodes.
        root: labelled samples folder (default: the run's own samples folder, read with
            labels even when the run reads it without).
        split: the split the episodes are drawn from.
        every_n_epochs: how often (0: never).
        centre: centre the split's features and project them to the unit sphere first.
    """

    def __init__(
        self,
        k_shot: list[int] = [5, 10],  # noqa: B006
        n_way: int | None = None,
        n_query: int = 15,
        episodes: int = 100,
        seed: int = 0,
        root: str | None = None,
        split: Literal["train", "val", "test"] = "val",
        every_n_epochs: int = 1,
        centre: bool = True,
    ):
        self.k_shot, self.n_way, self.n_query = list(k_shot), n_way, n_query
        self.episodes, self.seed, self.root, self.split = episodes, seed, root, split
        self.every, self.centre = every_n_epochs, centre
        self._dataset = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self._dataset is None and self.every > 0:
            bands = getattr(pl_module, "bands", None)
            self._dataset = labelled_split(trainer.datamodule, self.split, self.root, bands)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch
        if trainer.sanity_checking or self.every <= 0 or epoch % self.every:
            return
        features, labels = split_features(pl_module.encoder, self._dataset, pooling(pl_module))
        for k in self.k_shot:
            drawn = sample_episodes(labels, k, self.n_way, self.n_query, self.episodes, self.seed)
            scores = evaluate_episodes(features, drawn, self.centre)
            for name in ("f1_macro", "accuracy", "f1_macro_ci95", "accuracy_ci95"):
                pl_module.log(f"fewshot/{k}shot_{name}", scores[name], rank_zero_only=True)
