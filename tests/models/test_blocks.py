"""Model blocks: shapes, masking and padding behaviour, order invariance, losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cmap.models.decoders import (
    AttentionClassification,
    MulticlassClassification,
    Reconstruction,
    masked_max,
)
from cmap.models.embeddings.bands import PatchBandsEncoding, PixelEncoding
from cmap.models.embeddings.positions import (
    LearnedPositionalEncoding,
    PositionalEncoding,
    ThermalPositionalEncoding,
    sinusoid_table,
)
from cmap.models.encoders.exchanger import ExchangerEncoder
from cmap.models.encoders.ltae import LTAEEncoder
from cmap.models.encoders.tempcnn import regular_grid
from cmap.models.encoders.transformer import TransformerEncoder
from cmap.models.losses import FocalLoss, MaskedMSE
from tests.helpers import D, batch, build_encoder, encoder

ATTENTION = [
    "transformer",
    "transformer_pre_norm",
    "transformer_learned_patch",
    "exchanger",
    "ltae",
]
ENCODERS = [*ATTENTION, "tempcnn"]
HEADS = [MulticlassClassification, AttentionClassification]


def pad_dates(ts, positions, mask, extra=3):
    """The same samples with `extra` padded dates appended (garbage values, random positions)."""
    n, _, c = ts.shape
    return (
        torch.cat([ts, torch.full((n, extra, c), 1e3)], 1),
        torch.cat([positions, torch.full((n, extra), 399)], 1),
        torch.cat([mask, torch.zeros(n, extra, dtype=torch.bool)], 1),
    )


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("head_cls", HEADS)
def test_padding_does_not_change_features_or_logits(name, head_cls):
    torch.manual_seed(0)
    enc = build_encoder(name).eval()
    head = head_cls(enc.out_dim, 5).eval()
    ts, positions, mask = batch()
    out = enc(ts, positions, mask)
    longer = enc(*pad_dates(ts, positions, mask))
    if out.dim() == 3:  # per-date features: zeros at padding, same values at valid dates
        assert out.shape == (4, 6, D) and (out[~mask] == 0).all()
        assert (longer[:, 6:] == 0).all()
        torch.testing.assert_close(longer[:, :6][mask], out[mask], atol=1e-5, rtol=1e-5)
    else:
        assert out.shape == (4, enc.out_dim)
        torch.testing.assert_close(longer, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        head(longer, pad_dates(ts, positions, mask)[2]), head(out, mask), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("head_cls", HEADS)
def test_shuffling_dates_with_positions_keeps_logits(name, head_cls):
    torch.manual_seed(1)
    enc = build_encoder(name).eval()
    head = head_cls(enc.out_dim, 5).eval()
    ts, positions, mask = batch()
    perm = torch.randperm(6)
    logits = head(enc(ts, positions, mask), mask)
    shuffled = head(enc(ts[:, perm], positions[:, perm], mask[:, perm]), mask[:, perm])
    torch.testing.assert_close(shuffled, logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ATTENTION)
def test_attention_maps_are_masked_distributions(name):
    torch.manual_seed(0)
    enc = build_encoder(name).eval()
    ts, positions, mask = batch()
    maps = enc.get_attention_maps(ts, positions, mask)  # [N, L, Q, T]
    layers = {"ltae": 1, "transformer_learned_patch": 1}.get(name, 2)
    queries = 1 if name == "ltae" else 6
    assert maps.shape == (4, layers, queries, 6)
    assert (maps.masked_select(~mask[:, None, None, :]) == 0).all()
    rows = maps.sum(-1)  # [N, L, Q]
    valid_rows = (mask if queries == 6 else mask[:, :1].clone().fill_(True))[:, None, :]
    valid_rows = valid_rows.expand_as(rows)
    torch.testing.assert_close(rows[valid_rows], torch.ones(int(valid_rows.sum())))
    assert (rows[~valid_rows] == 0).all()


@pytest.mark.parametrize("name", ATTENTION)
def test_forward_with_attention_gives_forward_and_maps_in_one_pass(name):
    torch.manual_seed(0)
    enc = build_encoder(name).eval()
    ts, positions, mask = batch()
    out, maps = enc.forward_with_attention(ts, positions, mask)
    torch.testing.assert_close(out, enc(ts, positions, mask), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(maps, enc.get_attention_maps(ts, positions, mask))


@pytest.mark.parametrize("name", ENCODERS)
def test_gradients_reach_every_parameter_and_one_date_is_enough(name):
    torch.manual_seed(0)
    enc = build_encoder(name).train()
    pooled = name in ("ltae", "tempcnn")  # pooled output: the head's query would be unused
    head = (MulticlassClassification if pooled else AttentionClassification)(enc.out_dim, 3)
    ts, positions, mask = batch(n=4, t=5)
    mask[1:] = False
    mask[1:, 2] = True  # all samples but the first have a single valid date, in the middle
    mask[0, :] = True
    logits = head(enc(ts, positions, mask), mask)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    for pname, p in [*enc.named_parameters(), *head.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", ENCODERS)
def test_sample_without_any_valid_date_is_a_clear_error(name):
    ts, positions, mask = batch()
    mask[2] = False
    with pytest.raises(ValueError, match=r"1 sample\(s\) of the batch have no valid date .*\[2\]"):
        build_encoder(name).eval()(ts, positions, mask)


def test_pixel_encoding_ignores_padded_values():
    ts, _, mask = batch()
    layer = PixelEncoding(3, [8, 16], activation="gelu").train()
    out = layer(ts, mask)
    assert out.shape == (4, 6, 16)
    assert (out[~mask] == 0).all()
    noisy = ts.clone()
    noisy[~mask] = 1e6  # garbage at padded dates must not reach batch-norm statistics
    torch.testing.assert_close(layer(noisy, mask), out)
    with pytest.raises(ValueError, match="expects 3 bands per date, the data has 2"):
        layer(ts[..., :2], mask)


def test_patch_bands_encoding_convolves_bands_and_ignores_padding():
    ts, _, mask = batch(c=10)
    layer = PatchBandsEncoding(10, [4, 8], [5, 3], out_dim=16).train()
    assert layer.project.in_features == 8 * (10 - 4 - 2)
    out = layer(ts, mask)
    assert out.shape == (4, 6, 16) and (out[~mask] == 0).all()
    noisy = ts.clone()
    noisy[~mask] = -1e6
    torch.testing.assert_close(layer(noisy, mask), out)
    with pytest.raises(ValueError, match="kernels \\[5, 5, 3\\] are too wide for 10 bands"):
        PatchBandsEncoding(10, [4, 8, 8], [5, 5, 3])


def test_positional_encoding_table_padding_and_range():
    pe = PositionalEncoding(8, tau=10000, max_len=10)
    positions = torch.tensor([[0, 3, 9]])
    mask = torch.tensor([[True, True, False]])
    out = pe(positions, mask)
    torch.testing.assert_close(out[0, 0], torch.tensor([0.0, 1, 0, 1, 0, 1, 0, 1]))  # sin 0, cos 0
    torch.testing.assert_close(out[0, 1], sinusoid_table(10, 8, 10000)[3])
    assert (out[0, 2] == 0).all()
    for block in (pe, LearnedPositionalEncoding(8, max_len=10)):
        with pytest.raises(ValueError, match=r"positions in \[0, 10\] but accepts \[0, 10\)"):
            block(torch.tensor([[0, 10]]), torch.tensor([[True, True]]))
        with pytest.raises(ValueError, match=r"positions in \[-1, 0\]"):
            block(torch.tensor([[0, -1]]), torch.tensor([[True, True]]))


def test_learned_positions_keep_padding_at_zero():
    pe = LearnedPositionalEncoding(8, max_len=10)
    out = pe(torch.tensor([[0, 4, 7]]), torch.tensor([[True, True, False]]))
    torch.testing.assert_close(out[0, 1], pe.table.weight[5])
    assert (out[0, 2] == 0).all() and out[0, 0].abs().sum() > 0


def test_thermal_encoding_is_continuous_and_matches_the_table_on_integers():
    pe = ThermalPositionalEncoding(8, tau=10000, scale=10.0, max_value=5000)
    mask = torch.tensor([[True, True, True, False]])
    out = pe(torch.tensor([[0.0, 30.0, 1234.5, 0.0]]), mask)
    table = sinusoid_table(200, 8, 10000)
    torch.testing.assert_close(out[0, 1], table[3])  # 30 degC.day / scale 10 = step 3
    angle = torch.tensor(123.45)  # first frequency is 1: channels 0, 1 = sin, cos of the step
    torch.testing.assert_close(out[0, 2, :2], torch.stack([angle.sin(), angle.cos()]))
    assert (out[0, 3] == 0).all()
    nearby = pe(torch.tensor([[1234.6]]), torch.tensor([[True]]))
    assert 0 < (nearby[0, 0] - out[0, 2]).abs().max() < 0.05  # no rounding to a lookup table
    with pytest.raises(ValueError, match=r"ThermalPositionalEncoding got positions in \[0, 6000\]"):
        pe(torch.tensor([[0.0, 6000.0]]), torch.tensor([[True, True]]))


def test_encoders_check_widths():
    with pytest.raises(ValueError, match="produces width 8 but d_model is 16"):
        TransformerEncoder(PositionalEncoding(16), PixelEncoding(3, [8]), d_model=16, n_heads=4)
    with pytest.raises(ValueError, match="ExchangerEncoder: position_encoder"):
        ExchangerEncoder(PositionalEncoding(32), PixelEncoding(3, [16]), d_model=16, n_heads=4)
    with pytest.raises(ValueError, match="must be at least 1 and divide d_model"):
        LTAEEncoder(PositionalEncoding(16), PixelEncoding(3, [16]), d_model=16, n_heads=5)


def test_heads_pool_valid_dates_only():
    x = torch.tensor([[[1.0, -5.0], [3.0, -1.0], [99.0, 99.0]]])
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(masked_max(x, mask), torch.tensor([[3.0, -1.0]]))
    head = MulticlassClassification(in_dim=2, num_classes=4)
    assert head(x, mask).shape == (1, 4)
    attention = AttentionClassification(in_dim=2, num_classes=4)
    weights = attention.attention(x, mask)
    # The query starts at zero: uniform weights over the two valid dates, none on padding.
    torch.testing.assert_close(weights, torch.tensor([[0.5, 0.5, 0.0]]))
    torch.testing.assert_close(attention.pool(x, mask), torch.tensor([[2.0, -3.0]]))


def test_reconstruction_head_maps_dates_back_to_bands():
    ts, positions, mask = batch()
    features = encoder()(ts, positions, mask)
    for sizes in ([], [32]):
        out = Reconstruction(D, 3, sizes)(features, mask)
        assert out.shape == (4, 6, 3) and (out[~mask] == 0).all()
    with pytest.raises(ValueError, match="Reconstruction needs per-date features"):
        Reconstruction(12, 3)(build_encoder("ltae")(ts, positions, mask), mask)


def test_focal_loss_matches_cross_entropy_at_gamma_zero_and_a_hand_computed_value():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]])
    target = torch.tensor([0, 2, 1])
    weight = torch.tensor([1.0, 2.0, 0.5])
    torch.testing.assert_close(FocalLoss(0.0)(logits, target), F.cross_entropy(logits, target))
    torch.testing.assert_close(
        FocalLoss(0.0, alpha=weight.tolist())(logits, target),
        F.cross_entropy(logits, target, weight=weight),
    )
    # By hand, -(1 - p_t)^2 log p_t: sample 0 has p_t = e^2 / (e^2 + 1 + e^-1) = 0.84379,
    # so (0.15621)^2 x 0.16985 = 0.0041443; samples 1 and 2 have p_t 0.36717 and 0.93624.
    expected = torch.tensor([0.0041443, 0.4012577, 0.0002678])
    close = {"rtol": 1e-4, "atol": 1e-6}
    torch.testing.assert_close(FocalLoss(2.0, reduction="none")(logits, target), expected, **close)
    torch.testing.assert_close(FocalLoss(2.0)(logits, target), torch.tensor(0.1352233), **close)
    torch.testing.assert_close(
        FocalLoss(2.0, alpha=0.25, reduction="sum")(logits, target),
        torch.tensor(0.1014175),
        **close,
    )
    with pytest.raises(ValueError, match="has 2 class weights but the model has 3 classes"):
        FocalLoss(alpha=[1.0, 2.0])(logits, target)


def test_logit_adjusted_loss_adds_the_log_prior_inside_the_loss_only():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]])
    target = torch.tensor([0, 2, 1])
    prior = torch.tensor([0.7, 0.2, 0.1])
    loss = FocalLoss(0.0, logit_adjustment=0.5)
    with pytest.raises(ValueError, match="logit_adjustment needs the class prior"):
        loss(logits, target)
    loss.prior = prior
    adjusted = logits + 0.5 * prior.log()  # Menon et al. 2021, tau = 0.5
    torch.testing.assert_close(loss(logits, target), F.cross_entropy(adjusted, target))
    # a rare class's logit must beat a frequent one's by log(0.7 / 0.1) to lose nothing
    with pytest.raises(ValueError, match="logit_adjustment >= 0"):
        FocalLoss(logit_adjustment=-1.0)


def test_masked_mse_uses_selected_dates_only():
    prediction = torch.zeros(2, 3, 2)
    target = torch.tensor([[[1.0, 2.0], [100.0, 100.0], [3.0, 4.0]], [[0.0, 0.0]] * 3])
    selected = torch.tensor([[True, False, True], [False, False, False]])
    torch.testing.assert_close(MaskedMSE()(prediction, target, selected), torch.tensor(7.5))
    torch.testing.assert_close(
        MaskedMSE("none")(prediction, target, selected), torch.tensor([5.0, 10.0])
    )
    with pytest.raises(ValueError, match="no date is selected"):
        MaskedMSE()(prediction, target, torch.zeros(2, 3, dtype=torch.bool))


def test_regular_grid_averages_bins_and_interpolates_gaps():
    ts = torch.tensor([[[1.0], [3.0], [10.0], [99.0]]])  # [1, 4, 1]; the last date is padding
    positions = torch.tensor([[0, 5, 35, 0]])
    mask = torch.tensor([[True, True, True, False]])
    grid = regular_grid(ts, positions, mask, n_bins=4, span=40)  # bins of 10 days
    # bin 0: mean(1, 3) = 2; bins 1, 2 empty: interpolated towards bin 3 (10)
    assert grid[0, 0].tolist() == pytest.approx([2.0, 2 + 8 / 3, 2 + 16 / 3, 10.0])
    single = regular_grid(ts[:, :1], positions[:, :1], mask[:, :1], n_bins=3, span=40)
    assert single[0, 0].tolist() == [1.0, 1.0, 1.0]  # one date: constant


def test_a_block_without_what_its_kind_declares_is_refused_where_it_is_given():
    from cmap.models.base import BandsEmbedding, Encoder
    from cmap.tasks import Classifier

    class NoWidth(BandsEmbedding):  # forgets `out_dim`
        def __init__(self, in_bands: int = 3):
            super().__init__()
            self.linear = torch.nn.Linear(in_bands, 16)

    with pytest.raises(
        ValueError, match=r"bands_encoder: NoWidth \(a BandsEmbedding\) must set `out_dim`"
    ):
        TransformerEncoder(PositionalEncoding(16), NoWidth(), d_model=16, n_heads=4)

    class MeanOnly(Encoder):  # forgets `out_dim` too
        def forward(self, ts, positions, mask):
            return ts.mean(dim=1)

    with pytest.raises(ValueError, match=r"encoder: MeanOnly \(an Encoder\) must set `out_dim`"):
        Classifier(MeanOnly(), MulticlassClassification(3, 2), FocalLoss(), ["a", "b"])


@pytest.mark.parametrize("name", ENCODERS)
def test_encoders_say_whether_they_give_attention_maps(name):
    ts, positions, mask = batch()
    block = build_encoder(name)
    assert block.attention == (name in ATTENTION)
    if not block.attention:
        with pytest.raises(NotImplementedError, match="gives no attention maps"):
            block.get_attention_maps(ts, positions, mask)
