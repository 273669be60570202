"""Few-shot evaluation on frozen features: seeded N-way K-shot episodes, a nearest-prototype
classifier, scores with confidence intervals over episodes."""

from cmap.fewshot.episodes import (
    Episode,
    centred,
    evaluate_episodes,
    nearest_mean,
    prototype_predict,
    sample_episodes,
)

__all__ = [
    "Episode",
    "centred",
    "evaluate_episodes",
    "nearest_mean",
    "prototype_predict",
    "sample_episodes",
]
