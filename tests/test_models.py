"""Model blocks: shapes, masking and padding behaviour, losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cmap.models.decoders import MulticlassClassification, masked_max
from cmap.models.embeddings.bands import PixelEncoding
from cmap.models.embeddings.positions import PositionalEncoding, sinusoid_table
from cmap.models.encoders.transformer import TransformerEncoder
from cmap.models.losses import FocalLoss


def batch(n=4, t=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    ts = torch.rand(n, t, c, generator=g)
    lengths = torch.tensor([t, t - 2, 1, 3][:n])
    mask = torch.arange(t)[None] < lengths[:, None]
    positions = torch.randint(0, 300, (n, t), generator=g).sort(dim=1).values * mask
    return ts, positions, mask


def encoder(d=16, norm_first=False):
    return TransformerEncoder(
        PositionalEncoding(d, max_len=400),
        PixelEncoding(3, [8, d]),
        d_model=d,
        n_att_head=4,
        n_att_layers=2,
        dropout_p=0.0,
        norm_first=norm_first,
    )


def test_pixel_encoding_ignores_padded_values():
    ts, _, mask = batch()
    layer = PixelEncoding(3, [8, 16]).train()
    out = layer(ts, mask)
    assert out.shape == (4, 6, 16)
    assert (out[~mask] == 0).all()
    noisy = ts.clone()
    noisy[~mask] = 1e6  # garbage at padded dates must not reach batch-norm statistics
    torch.testing.assert_close(layer(noisy, mask), out)
    with pytest.raises(ValueError, match="expects 3 bands per date, the data has 2"):
        layer(ts[..., :2], mask)


def test_positional_encoding_table_padding_and_range():
    pe = PositionalEncoding(8, tau=10000, max_len=10)
    positions = torch.tensor([[0, 3, 9]])
    mask = torch.tensor([[True, True, False]])
    out = pe(positions, mask)
    torch.testing.assert_close(out[0, 0], torch.tensor([0.0, 1, 0, 1, 0, 1, 0, 1]))  # sin 0, cos 0
    torch.testing.assert_close(out[0, 1], sinusoid_table(10, 8, 10000)[3])
    assert (out[0, 2] == 0).all()
    with pytest.raises(ValueError, match=r"positions in \[0, 10\] but max_len is 10"):
        pe(torch.tensor([[0, 10]]), torch.tensor([[True, True]]))


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_output_does_not_depend_on_padding(norm_first):
    torch.manual_seed(0)
    enc = encoder(norm_first=norm_first).eval()
    ts, positions, mask = batch()
    out = enc(ts, positions, mask)
    assert out.shape == (4, 6, 16) and (out[~mask] == 0).all()
    # The same series padded to a longer batch gives the same features at valid dates.
    pad = torch.zeros(4, 3, 3)
    longer = enc(
        torch.cat([ts, pad], 1),
        torch.cat([positions, pad[..., 0].long()], 1),
        torch.cat([mask, pad[..., 0].bool()], 1),
    )
    torch.testing.assert_close(longer[:, :6][mask], out[mask], atol=1e-5, rtol=1e-5)


def test_transformer_checks_widths():
    with pytest.raises(ValueError, match="produces width 8 but d_model is 16"):
        TransformerEncoder(PositionalEncoding(16), PixelEncoding(3, [8]), d_model=16, n_att_head=4)


def test_attention_maps_are_masked_distributions():
    torch.manual_seed(0)
    enc = encoder().eval()
    ts, positions, mask = batch()
    maps = enc.get_attention_maps(ts, positions, mask)
    assert maps.shape == (4, 2, 6, 6)
    key_pad = ~mask[:, None, None, :].expand_as(maps)
    assert (maps[key_pad] == 0).all()
    rows = maps.sum(-1)  # [N, L, T]
    valid_rows = mask[:, None, :].expand_as(rows)
    torch.testing.assert_close(rows[valid_rows], torch.ones(int(valid_rows.sum())))
    assert (rows[~valid_rows] == 0).all()


def test_head_pools_valid_dates_only():
    x = torch.tensor([[[1.0, -5.0], [3.0, -1.0], [99.0, 99.0]]])
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(masked_max(x, mask), torch.tensor([[3.0, -1.0]]))
    head = MulticlassClassification(hidden=2, num_classes=4)
    assert head(x, mask).shape == (1, 4)


def test_focal_loss_matches_cross_entropy_at_gamma_zero_and_down_weights_easy():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]])
    target = torch.tensor([0, 2, 1])
    weight = torch.tensor([1.0, 2.0, 0.5])
    torch.testing.assert_close(FocalLoss(0.0)(logits, target), F.cross_entropy(logits, target))
    torch.testing.assert_close(
        FocalLoss(0.0, alpha=weight.tolist())(logits, target),
        F.cross_entropy(logits, target, weight=weight),
    )
    p = logits.softmax(-1)[torch.arange(3), target]
    expected = (-((1 - p) ** 2) * p.log()).mean()
    torch.testing.assert_close(FocalLoss(2.0)(logits, target), expected)
    assert FocalLoss(2.0)(logits, target) < FocalLoss(0.0)(logits, target)
