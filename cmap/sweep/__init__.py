"""`cmap sweep`: grid or Optuna searches over config values, one cmap run per trial."""

from cmap.sweep.command import sweep

__all__ = ["sweep"]
