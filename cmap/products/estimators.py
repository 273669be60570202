"""Accuracy and area estimates from a reference sample of a map, after Olofsson et al. (2014,
"Good practices for estimating area and assessing accuracy of land change", Remote Sensing
of Environment 148: 42-57): the map's classes are the strata of a stratified random sample,
and each stratum's sample is weighted by its share of the map (W_i), which makes the area
of each class, and the accuracies, unbiased estimates with standard errors.

Notation: counts n[i, j] (row i: map class, column j: reference class), n_i = its row total,
W_i = mapped area share of class i, p[i, j] = W_i n[i, j] / n_i the estimated area share.

The paper leaves out the finite population correction, as its strata are far larger than
their samples; here each stratum's variance terms are multiplied by 1 - n_i / N_i (N_i: its
mapped pixels, sampled without replacement), which changes nothing at such sizes but makes a
census (every pixel a sample) exact, with a zero standard error.
"""

from __future__ import annotations

import numpy as np

Z95 = 1.959964  # the normal quantile of a two-sided 95 % interval


def sample_metrics(counts: np.ndarray) -> dict:
    """Plain confusion-matrix metrics of the sample counts [K, K] (rows: map, columns:
    reference): overall accuracy, user's and producer's accuracy, F1 per class, macro-F1
    (over classes the sample or the map holds) and Cohen's kappa."""
    n = counts.astype(np.float64)
    total = n.sum()
    mapped, reference, right = n.sum(axis=1), n.sum(axis=0), np.diag(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        users, producers = right / mapped, right / reference
        f1 = np.where(right > 0, 2 * right / (mapped + reference), 0.0)
    present = (mapped + reference) > 0
    overall = right.sum() / total
    chance = (mapped * reference).sum() / total**2
    return {
        "overall_accuracy": overall,
        "kappa": (overall - chance) / (1 - chance) if chance < 1 else float("nan"),
        "macro_f1": float(f1[present].mean()),
        "users_accuracy": users,
        "producers_accuracy": producers,
        "f1": f1,
    }


def stratified_estimates(counts: np.ndarray, mapped: np.ndarray) -> dict:
    """Olofsson et al. (2014) estimates from sample counts [K, K] and the mapped pixels per
    class [K] (the strata). Area shares and accuracies with their standard errors (eq. 4-7
    and 10 of the paper, with the finite population correction); strata without a sample are
    left out (their weight too), and a stratum of one sample point has no standard error
    (NaN) unless it is the stratum's only pixel."""
    n = counts.astype(np.float64)
    n_i = n.sum(axis=1)
    sampled = n_i > 0
    weight = np.where(sampled, mapped, 0).astype(np.float64)
    weight /= weight.sum()  # W_i
    census = sampled & (
        n_i >= mapped
    )  # every mapped pixel of the stratum sampled: no sampling error
    fpc = 1 - n_i / np.maximum(mapped, 1)  # 1 - n_i / N_i
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(sampled[:, None], n / n_i[:, None], 0.0)  # n_ij / n_i
        p = weight[:, None] * share  # p_ij
        spread = fpc[:, None] * share * (1 - share) / (n_i[:, None] - 1)  # variance terms
        spread = np.where(sampled[:, None] & ~census[:, None], spread, 0.0)
        area = p.sum(axis=0)  # p_.j
        area_se = np.sqrt((weight[:, None] ** 2 * spread).sum(axis=0))
        users = np.diag(p) / p.sum(axis=1)  # = n_ii / n_i
        users_var = np.where(census, 0.0, fpc * users * (1 - users) / (n_i - 1))
        overall = np.trace(p)
        overall_se = np.sqrt((weight**2 * users_var)[sampled].sum())
        producers = np.diag(p) / area
        # eq. 7 with estimated pixel totals: N_j. = mapped pixels, N^_.j = sum_i N_i. n_ij/n_i
        big = mapped.astype(np.float64)
        column = (big[:, None] * share).sum(axis=0)
        others = np.array(
            [
                sum(big[i] ** 2 * spread[i, j] for i in range(len(big)) if i != j)
                for j in range(len(big))
            ]
        )
        producers_var = (
            big**2 * (1 - producers) ** 2 * users_var + producers**2 * others
        ) / column**2
    return {
        "area_share": area,
        "area_share_se": area_se,
        "overall_accuracy": overall,
        "overall_accuracy_se": overall_se,
        "users_accuracy": users,
        "users_accuracy_se": np.sqrt(users_var),
        "producers_accuracy": producers,
        "producers_accuracy_se": np.sqrt(producers_var),
        "proportions": p,
        "sampled": sampled,
    }
