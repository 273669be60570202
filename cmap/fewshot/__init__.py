"""Few-shot evaluation on frozen features: seeded N-way K-shot episodes, a nearest-prototype
classifier, scores with confidence intervals over episodes."""

from cmap.fewshot.episodes import Episode, evaluate_episodes, prototype_predict, sample_episodes

__all__ = ["Episode", "evaluate_episodes", "prototype_predict", "sample_episodes"]
