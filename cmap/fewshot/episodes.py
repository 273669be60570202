"""N-way K-shot episodes drawn from a labelled split, and the prototype classifier scored on
them (as in EASY, Bendou et al. 2022: centred, unit-norm features, nearest class mean)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cmap.errors import ConfigError


@dataclass
class Episode:
    """Indices into the split of the support [W K] and query [Q] series, their labels as
    episode classes 0..W-1, and the split's class ids of those W classes."""

    support: np.ndarray
    support_labels: np.ndarray
    query: np.ndarray
    query_labels: np.ndarray
    classes: np.ndarray


def sample_episodes(
    labels: np.ndarray,
    k_shot: int,
    n_way: int | None = None,
    n_query: int = 15,
    episodes: int = 100,
    seed: int = 0,
) -> list[Episode]:
    """`episodes` seeded episodes over labels [M] (negative = unlabelled, never drawn).

    Classes with at least k_shot + 1 series are eligible; each episode draws `n_way` of them
    (None: all), then per class K support series and up to `n_query` other ones as queries.
    """
    if k_shot < 1 or n_query < 1 or episodes < 1:
        raise ConfigError(
            f"few-shot needs k_shot, n_query, episodes >= 1 (got {k_shot}, {n_query}, {episodes})"
        )
    ids, counts = np.unique(labels[labels >= 0], return_counts=True)
    eligible = ids[counts > k_shot]
    asked, n_way = n_way, len(eligible) if n_way is None else n_way
    if n_way < 2 or len(eligible) < n_way:
        kind = f"{asked}-way" if asked is not None else "all-class"
        raise ConfigError(
            f"{kind} {k_shot}-shot episodes need {max(n_way, 2)} classes with more than "
            f"{k_shot} series; the split has {dict(zip(ids.tolist(), counts.tolist()))}"
        )
    members = {c: np.flatnonzero(labels == c) for c in eligible.tolist()}
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(episodes):
        classes = np.sort(rng.choice(eligible, n_way, replace=False))
        support, query, support_labels, query_labels = [], [], [], []
        for way, c in enumerate(classes.tolist()):
            drawn = rng.permutation(members[c])
            support.append(drawn[:k_shot])
            query.append(drawn[k_shot : k_shot + n_query])
            support_labels.append(np.full(k_shot, way))
            query_labels.append(np.full(len(query[-1]), way))
        out.append(
            Episode(*map(np.concatenate, (support, support_labels, query, query_labels)), classes)
        )
    return out


def prototype_predict(support: torch.Tensor, labels: torch.Tensor, query: torch.Tensor, n_way: int):
    """Support features [S, D] with episode labels [S] (0..n_way-1), query features [Q, D] ->
    the class of the nearest class mean (Euclidean) for each query [Q]."""
    prototypes = torch.zeros(n_way, support.shape[1], dtype=support.dtype)
    prototypes.index_add_(0, labels, support)
    prototypes /= torch.bincount(labels, minlength=n_way).clamp(min=1)[:, None].to(support.dtype)
    return torch.cdist(query, prototypes).argmin(dim=1)


def centred(*features: torch.Tensor) -> list[torch.Tensor]:
    """Feature sets [M_i, D] centred on their joint mean and projected to the unit sphere
    (EASY's preprocessing), in float64."""
    x = [f.double().cpu() for f in features]
    mean = torch.cat(x).mean(dim=0, keepdim=True)
    return [F.normalize(f - mean, dim=1) for f in x]


def nearest_mean(
    support: torch.Tensor, labels: np.ndarray, query: torch.Tensor, n_classes: int
) -> np.ndarray:
    """Classes [Q] of query features from labelled support features (class ids 0..K-1, every
    class present or not): centred, then the nearest class mean; absent classes are never
    predicted."""
    present = np.unique(labels)
    support, query = centred(support, query)
    ways = torch.from_numpy(np.searchsorted(present, labels))
    return present[prototype_predict(support, ways, query, len(present)).numpy()]


def _macro_f1(pred: np.ndarray, truth: np.ndarray, n_way: int) -> float:
    scores = []
    for c in range(n_way):
        tp = np.sum((pred == c) & (truth == c))
        fp, fn = np.sum((pred == c) & (truth != c)), np.sum((pred != c) & (truth == c))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))


def evaluate_episodes(features: torch.Tensor, episodes: list[Episode], centre: bool = True) -> dict:
    """Prototype accuracy and macro-F1 over the episodes: mean and 95 % confidence half-width
    (1.96 sd / sqrt(episodes)). Features [M, D] of the whole split are centred on their mean
    and projected to the unit sphere first (`centre`: EASY's preprocessing)."""
    (x,) = centred(features) if centre else (features.double().cpu(),)
    accuracy, f1 = [], []
    for e in episodes:
        n_way = len(e.classes)
        pred = prototype_predict(
            x[e.support], torch.from_numpy(e.support_labels), x[e.query], n_way
        ).numpy()
        accuracy.append(float(np.mean(pred == e.query_labels)))
        f1.append(_macro_f1(pred, e.query_labels, n_way))
    half = 1.96 / math.sqrt(len(episodes))
    return {
        "accuracy": float(np.mean(accuracy)),
        "accuracy_ci95": float(np.std(accuracy, ddof=1) * half) if len(episodes) > 1 else 0.0,
        "f1_macro": float(np.mean(f1)),
        "f1_macro_ci95": float(np.std(f1, ddof=1) * half) if len(episodes) > 1 else 0.0,
        "episodes": len(episodes),
        "n_way": len(episodes[0].classes),
        "k_shot": int(len(episodes[0].support) // len(episodes[0].classes)),
    }
