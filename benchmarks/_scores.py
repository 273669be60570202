"""Shared by the benchmark scripts: scores of predicted classes, their summary over seeds,
seed ensembles, paired differences and the markdown table of `accuracy.py`."""

from __future__ import annotations

import statistics

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_cohen_kappa,
    multiclass_f1_score,
)


def scores(preds: np.ndarray, target: np.ndarray, classes: list[str]) -> dict:
    """OA, macro-F1, kappa and per-class F1 of predicted classes on the test split. Macro-F1
    averages the classes the test split holds; a class it lacks has no F1 (None), and
    predicting it costs the precision of the classes that were there instead."""
    p, t, k = torch.as_tensor(preds), torch.as_tensor(target), len(classes)
    per_class = multiclass_f1_score(p, t, k, average="none")
    present = torch.bincount(t, minlength=k) > 0
    return {
        "oa": round(float(multiclass_accuracy(p, t, k, average="micro")), 4),
        "f1_macro": round(float(per_class[present].mean()), 4),
        "kappa": round(float(multiclass_cohen_kappa(p, t, k)), 4),
        "f1_per_class": {
            c: round(float(f), 4) if there else None
            for c, f, there in zip(classes, per_class, present)
        },
    }


def test_outputs(model, data) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities [N, K] and labels [N] of a model on a data module's test split."""
    data.setup("test")
    p, target = [], []
    with torch.inference_mode():
        for batch in data.test_dataloader():
            p.append(model(batch).softmax(dim=-1))
            target.append(batch["class"])
    return torch.cat(p).double().numpy(), torch.cat(target).numpy()


def shown(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def summarise(runs: list[dict]) -> dict:
    """Mean over seeds of every number, with the per-seed macro-F1."""
    mean = {
        key: round(statistics.mean(r[key] for r in runs), 4)
        for key in ("oa", "f1_macro", "kappa", "fit_s")
    }
    classes = runs[0]["f1_per_class"]
    mean["f1_per_class"] = {  # the seeds share one test split: the same classes lack F1
        c: None if runs[0]["f1_per_class"][c] is None
        else round(statistics.mean(r["f1_per_class"][c] for r in runs), 4)
        for c in classes
    }  # fmt: skip
    if "date_views" in runs[0]:
        viewed = [r["date_views"]["f1_macro"] for r in runs]
        gains = [v - r["f1_macro"] for v, r in zip(viewed, runs)]
        mean["date_views"] = {
            "f1_macro": round(statistics.mean(viewed), 4),
            "gain_mean": round(statistics.mean(gains), 4),
            "gain_sd": round(statistics.pstdev(gains), 4),
        }
    return mean | {
        "f1_macro_sd": round(statistics.pstdev(r["f1_macro"] for r in runs), 4),
        "params": runs[0]["params"],
        "per_seed": runs,
    }


def seed_ensemble(probabilities: list, targets: list, classes: list[str]) -> dict:
    """Scores of the seeds' mean test probabilities (a cmap model's runs)."""
    if any(not np.array_equal(t, targets[0]) for t in targets):
        raise ValueError("the seeds' test splits differ: no ensemble of them")
    return scores(np.mean(probabilities, axis=0).argmax(axis=1), targets[0], classes)


def paired(models: dict, reference: str = "transformer") -> dict:
    """Per seed, each model's test macro-F1 minus the reference's (same seed, same split):
    mean and sd of the differences over the seeds both have."""
    if reference not in models:
        return {}
    base = {r["seed"]: r["f1_macro"] for r in models[reference]["per_seed"] if "seed" in r}
    out = {}
    for name, result in models.items():
        diffs = [r["f1_macro"] - base[r["seed"]] for r in result["per_seed"]
                 if r.get("seed") in base and name != reference]  # fmt: skip
        if diffs:
            out[name] = {
                "mean": round(statistics.mean(diffs), 4),
                "sd": round(statistics.pstdev(diffs), 4),
                "per_seed": [round(d, 4) for d in diffs],
            }
    return out


def table(name: str, models: dict) -> str:
    """Markdown table of one dataset's results."""
    classes = list(next(iter(models.values()))["f1_per_class"])
    lines = [
        f"#### {name}",
        "",
        "| model | OA | macro-F1 (± sd) | default − model (± sd) | kappa | "
        + " | ".join(f"F1 {c}" for c in classes)
        + " | fit s | params |",
        "|---" * (7 + len(classes)) + "|",
    ]
    differences = paired(models)
    for model, r in models.items():
        per_class = " | ".join(shown(r["f1_per_class"][c]) for c in classes)
        d = differences.get(model)
        gap = f"{-d['mean']:+.3f} ± {d['sd']:.3f}" if d else "—"
        lines.append(
            f"| {model} | {r['oa']:.3f} | {r['f1_macro']:.3f} ± {r['f1_macro_sd']:.3f} | {gap} "
            f"| {r['kappa']:.3f} | {per_class} | {r['fit_s']:.0f} | {r['params']:,} |"
        )
        if "date_views" in r:
            v = r["date_views"]
            lines.append(
                f"| {model}, date views | — | {v['f1_macro']:.3f} | gain {v['gain_mean']:+.3f} ± "
                f"{v['gain_sd']:.3f} | — |" + " — |" * len(classes) + " — | — |"
            )
        if "seed_ensemble" in r:  # costs every seed's fit and parameters together
            e, n = r["seed_ensemble"], len(r["per_seed"])
            per_class = " | ".join(shown(e["f1_per_class"][c]) for c in classes)
            lines.append(
                f"| {model}, {n} seeds' mean | {e['oa']:.3f} | {e['f1_macro']:.3f} | — "
                f"| {e['kappa']:.3f} | {per_class} | {n * r['fit_s']:.0f} | {n * r['params']:,} |"
            )
    return "\n".join(lines)
