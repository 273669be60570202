"""The figures of the model a user keeps: at the end of a fit, the best checkpoint's encoder
and head (the final weights without a monitored checkpoint) go once more over this process's
validation batches, for attention per class and projector embeddings at the best epoch."""

from __future__ import annotations

from pathlib import Path

import torch

from cmap.reports.attention import AttentionByClass, season_bins
from cmap.reports.tensorboard import EMBEDDING_HEADER as HEADER
from cmap.reports.tensorboard import log_embeddings


def best_model_pass(reports, module) -> None:
    """`reports` (a `ClassificationReports`) logs `val/attention_best` and
    `val_embeddings_best` at the best epoch's step, from up to its caps of samples."""
    trainer = module.trainer
    epoch, final = module.current_epoch, None
    monitored = [c for c in trainer.checkpoint_callbacks if c.monitor and c.best_model_path]
    if monitored:  # the best weights in place for this pass, the final ones put back after
        state = torch.load(
            Path(monitored[0].best_model_path), map_location=module.device, weights_only=True
        )
        epoch = int(state["epoch"])
        final = {k: v.detach().clone() for k, v in module.state_dict().items()}
        module.load_state_dict(state["state_dict"])
    was_training = module.training
    module.eval()
    encoder, decoder = module.encoder, module.decoder
    attention = None
    if reports.log_figures and encoder.attention:
        bins, labels = season_bins(trainer.datamodule)
        attention = AttentionByClass(
            len(reports.classes), bins, labels, reports.attention.max_samples
        )
    reports._embeddings, reports._metadata = [], []
    with torch.no_grad():
        for batch in trainer.datamodule.val_dataloader():
            batch = {k: v.to(module.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            inputs = (batch["ts"], batch["positions"], batch["mask"])
            if attention is not None and not attention.full:
                features, maps = encoder.forward_with_attention(*inputs)
                attention.update(maps, batch["days"], batch["mask"], batch["class"])
            else:
                features = encoder(*inputs)
            preds = decoder(features, batch["mask"]).argmax(dim=-1)
            if reports.embeddings_every > 0:
                reports._collect_embeddings(module, batch, features, preds)
            embedded = sum(len(e) for e in reports._embeddings)
            if (attention is None or attention.full) and embedded >= reports.max_embeddings:
                break
    module.train(was_training)
    if final is not None:
        module.load_state_dict(final)
    embeddings, metadata = reports._embeddings, reports._metadata
    reports._embeddings, reports._metadata = [], []
    if embeddings:
        features = torch.cat(embeddings)
        log_embeddings(module.logger, "val_embeddings_best", features, metadata, HEADER, epoch)
    figures = module.figures() if reports.log_figures else None
    title = f"val, best checkpoint (epoch {epoch})"
    reports.attention.log(attention, figures, "val/attention_best", epoch, title)
