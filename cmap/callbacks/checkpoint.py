"""Lightning's ModelCheckpoint, made to keep the best model across a resumed run."""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning.callbacks import ModelCheckpoint as LightningModelCheckpoint


class ModelCheckpoint(LightningModelCheckpoint):
    """Lightning's ModelCheckpoint (same arguments), except that a run resumed into a new log
    folder keeps the best score of the run it continues: Lightning keeps only the best path
    there, so the first epoch after the resume became "best" whatever its score. The earlier
    run's best checkpoint stays the best until an epoch beats it, and files outside this
    run's folder are never deleted."""

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        earlier, score = state_dict.get("best_model_path"), state_dict.get("best_model_score")
        moved = state_dict.get("dirpath", self.dirpath) != self.dirpath
        if moved and earlier and score is not None and Path(earlier).is_file():
            self.best_model_score = score
            self.best_k_models = {earlier: score}
            self.kth_best_model_path, self.kth_value = earlier, score

    def _remove_checkpoint(self, trainer, filepath: str) -> None:
        if self.dirpath and Path(filepath).resolve().parent != Path(self.dirpath).resolve():
            return  # the earlier run's file
        super()._remove_checkpoint(trainer, filepath)
