"""Invariants of the generative attention kinds (issue 4): shapes, masks, no-future, modes, losses."""

from __future__ import annotations

import pytest
import torch

from seqrec.model.attention import build_attention
from seqrec.model.config import ModelConfig

# Every decoder of each kind, for the invariants that must hold whatever the options.
VARIANTS = [("vgenatt", {}), ("vgenatt", {"decoder": "gate", "free_bits": 0.0}), ("dgenatt", {})]
B, L, D, H = 3, 7, 16, 2


def make(kind: str, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(n_items=50, max_len=L, d_model=D, n_heads=H, dropout=0.0, attention=kind, attention_options=options)
    layer = build_attention(cfg)
    # Wake the zero-initialised generative paths so the tests exercise them, not plain softmax.
    with torch.no_grad():
        for p in layer.parameters():
            if p.abs().sum() == 0 and p.dim() > 0:
                p.normal_(0, 0.3)
    return layer


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, L, D, generator=g)
    lengths = torch.tensor([L, 4, 1])
    valid = torch.arange(L)[None, :] >= (L - lengths)[:, None]  # (B, L) left-padded
    return x, valid


def allowed(valid: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L) keys a real query row may see."""
    tri = torch.ones(L, L, dtype=torch.bool).tril()
    return (tri & valid[:, None, :] & valid[:, :, None])[:, None]


@pytest.mark.parametrize("kind, options", VARIANTS)
@pytest.mark.parametrize("mode", ["mean", "sample"])
def test_shapes_and_rows_are_distributions(kind: str, options: dict, mode: str) -> None:
    layer = make(kind, inference=mode, **options).eval()
    x, valid = batch()
    res = layer(x, valid, return_weights=True)
    assert res.out.shape == (B, L, D) and res.weights.shape == (B, H, L, L)
    assert torch.isfinite(res.out).all() and torch.isfinite(res.weights).all()
    ok = allowed(valid).expand(B, H, L, L)
    real_rows = valid[:, None, :].expand(B, H, L)
    sums = res.weights.sum(-1)
    torch.testing.assert_close(sums[real_rows], torch.ones_like(sums[real_rows]))
    assert (res.weights[~ok & real_rows[..., None]] == 0).all()


@pytest.mark.parametrize("kind, options", VARIANTS)
def test_no_information_from_the_future(kind: str, options: dict) -> None:
    layer = make(kind, **options).eval()
    x, valid = batch()
    base = layer(x, valid).out
    for t in range(L - 1):
        x2 = x.clone()
        x2[:, t + 1 :] += torch.randn_like(x2[:, t + 1 :]) * 3
        out = layer(x2, valid).out
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1])


@pytest.mark.parametrize("kind, options", VARIANTS)
def test_mean_mode_is_deterministic_and_sample_mode_is_not(kind: str, options: dict) -> None:
    layer = make(kind, **options).eval()
    x, valid = batch()
    a, b = layer(x, valid, return_weights=True), layer(x, valid, return_weights=True)
    torch.testing.assert_close(a.out, b.out, rtol=0, atol=0)
    # Same history gives the same output whatever else is in the batch.
    alone = layer(x[:1], valid[:1]).out
    torch.testing.assert_close(alone, a.out[:1])
    layer.set_inference_mode("sample")
    c, d = layer(x, valid, return_weights=True), layer(x, valid, return_weights=True)
    assert not torch.allclose(c.out[valid], d.out[valid])
    torch.testing.assert_close(d.weights.sum(-1)[valid[:, None].expand(B, H, L)], torch.ones(int(valid.sum()) * H))


@pytest.mark.parametrize(
    "kind, options",
    [("vgenatt", {"free_bits": 0.0}), ("vgenatt", {"decoder": "gate", "free_bits": 0.0}), ("dgenatt", {}),
     ("dgenatt", {"stop_grad_target": False})],
)
def test_aux_loss_is_finite_and_decreases(kind: str, options: dict) -> None:
    layer = make(kind, **options).train()
    if kind == "vgenatt":
        layer.set_training_progress(1.0)  # full beta cap from the first step
    x, valid = batch()
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        torch.manual_seed(len(losses))  # the same noise draws each run
        aux = layer(x, valid).aux_loss
        assert aux is not None and torch.isfinite(aux)
        opt.zero_grad()
        aux.backward()
        opt.step()
        losses.append(aux.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, (first, last)


def test_vgenatt_beta_anneals_from_zero_to_cap() -> None:
    layer = make("vgenatt", beta_cap=0.5, anneal_fraction=0.5)
    layer.set_training_progress(0.0)
    assert layer.beta == 0.0
    layer.set_training_progress(0.25)
    assert layer.beta == pytest.approx(0.25)
    layer.set_training_progress(0.9)
    assert layer.beta == pytest.approx(0.5)


def test_vgenatt_free_bits_penalise_only_the_kl_above_the_floor() -> None:
    Z = 4
    valid = torch.tensor([[False, True, True]])
    mu = torch.tensor([[[9.0, 9.0, 9.0, 9.0], [0.0, 1.0, 2.0, 0.1], [0.0, 1.0, 0.0, 0.1]]], requires_grad=True)
    logvar = torch.zeros(1, 3, Z)
    # KL per dim = mu^2 / 2 averaged over the two valid positions: (0, 0.5, 1.0, 0.005).
    plain = make("vgenatt", latent_dim=Z, free_bits=0.0).penalised_kl(mu, logvar, valid)
    assert plain.item() == pytest.approx(1.505)
    floored = make("vgenatt", latent_dim=Z, free_bits=0.6).penalised_kl(mu, logvar, valid)
    assert floored.item() == pytest.approx(1.0 - 0.6)
    floored.backward()
    # Only the dim above the floor gets a gradient; the padded position never does.
    assert (mu.grad[0, 1:, [0, 1, 3]] == 0).all() and mu.grad[0, 1, 2] != 0 and (mu.grad[0, 0] == 0).all()


def test_vgenatt_gate_decoder_starts_as_softmax_attention() -> None:
    cfg = ModelConfig(n_items=50, max_len=L, d_model=D, n_heads=H, dropout=0.0, attention="vgenatt",
                      attention_options={"decoder": "gate"})
    torch.manual_seed(0)
    layer = build_attention(cfg).eval()  # not woken: the zero-initialised gates are exactly 1
    x, valid = batch()
    q, k, _ = layer.qkv(x).split(D, dim=2)
    q, k = (t.view(B, L, H, D // H).transpose(1, 2) for t in (q, k))
    plain = (q @ k.transpose(-2, -1) / (D // H) ** 0.5).masked_fill(~allowed(valid), float("-inf")).softmax(-1)
    weights = layer(x, valid, return_weights=True).weights
    real_rows = valid[:, None, :].expand(B, H, L)
    torch.testing.assert_close(weights[real_rows], plain[real_rows])


@pytest.mark.parametrize("steps", [1, 3, 10])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_dgenatt_any_step_count_and_schedule(steps: int, schedule: str) -> None:
    layer = make("dgenatt", steps_T=10, inference_steps=steps, schedule=schedule, start_fraction=1.0).eval()
    x, valid = batch()
    res = layer(x, valid, return_weights=True)
    assert torch.isfinite(res.out).all()
    torch.testing.assert_close(res.weights.sum(-1)[valid[:, None].expand(B, H, L)], torch.ones(int(valid.sum()) * H))


@pytest.mark.parametrize(
    "kind, options",
    [
        ("vgenatt", {"latent": 4}),
        ("dgenatt", {"steps": 4}),
        ("vgenatt", {"inference": "median"}),
        ("dgenatt", {"steps_T": 4, "inference_steps": 5}),
        ("dgenatt", {"schedule": "sigmoid"}),
        ("vgenatt", {"free_bits": -0.1}),
        ("vgenatt", {"decoder": "mlp"}),
    ],
)
def test_bad_options_raise_value_error(kind: str, options: dict) -> None:
    with pytest.raises(ValueError):
        make(kind, **options)


def wake(model: torch.nn.Module) -> None:
    """Randomise the zero-initialised generative parameters of a whole model (see `make`)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".attn." in name and p.dim() > 0 and p.abs().sum() == 0:
                p.normal_(0, 0.3)


ROUND_TRIP_OPTIONS = {
    "vgenatt": {"latent_dim": 4},
    "vgenatt-gate": {"latent_dim": 4, "decoder": "gate", "free_bits": 0.25},
    "dgenatt": {"steps_T": 6, "inference_steps": 3},
}


@pytest.mark.parametrize("variant", sorted(ROUND_TRIP_OPTIONS))
def test_checkpoint_round_trip_and_padding_invariance(variant: str, tmp_path) -> None:
    checkpoint = pytest.importorskip("seqrec.model.checkpoint")
    inference = pytest.importorskip("seqrec.model.inference")
    from seqrec.model.data import ItemMap, pad_left
    from seqrec.model.sasrec import SASRec

    torch.manual_seed(0)
    n_items = 30
    cfg = ModelConfig(n_items=n_items, max_len=12, d_model=D, n_heads=H, attention=variant.split("-")[0],
                      attention_options=ROUND_TRIP_OPTIONS[variant])
    model = SASRec(cfg)
    wake(model)
    model.eval()
    item_map = ItemMap([str(i) for i in range(100, 100 + n_items)])
    path = tmp_path / "best.pt"
    checkpoint.save_checkpoint(path, model, item_map, data_fingerprint="test", metrics={})
    rec = inference.Recommender.from_checkpoint(path, device="cpu")
    assert rec.model.config == cfg
    histories = [[3, 7, 7, 1], [5], [2, 9, 4, 11, 8, 6, 1, 3, 12, 2, 5, 7]]
    items = pad_left(histories, 12)
    torch.testing.assert_close(rec.model.score_last(items), model.score_last(items), rtol=0, atol=0)
    # Mean mode: the same history gives the same scores however wide the batch is padded.
    narrow = pad_left(histories[:2], 4)
    torch.testing.assert_close(rec.model.score_last(narrow), model.score_last(items)[:2], rtol=1e-5, atol=1e-5)
    raw = [[item_map.raw(i) for i in h] for h in histories]
    assert rec.recommend(raw, k=5) == rec.recommend(raw, k=5)


@pytest.mark.parametrize("steps, start", [(1, 0.5), (2, 0.5), (3, 1.0), (10, 1.0)])
def test_dgenatt_collapsed_chain_equals_step_by_step_ddim(steps: int, start: float) -> None:
    layer = make("dgenatt", steps_T=10, inference_steps=steps, start_fraction=start).eval()
    x, valid = batch()
    with torch.no_grad():
        q, k, _ = layer.qkv(x).split(D, dim=2)
        q, k = (t.view(B, L, H, D // H).transpose(1, 2) for t in (q, k))
        a0 = q @ k.transpose(-2, -1) / (D // H) ** 0.5
        hist = layer.history_terms(x, valid)
        t_start = max(1, round(start * 10))
        times = torch.linspace(t_start, 0, min(steps, t_start) + 1).round().long().tolist()
        a = layer.abar[t_start].sqrt() * a0
        for t_now, t_next in zip(times[:-1], times[1:]):  # the textbook DDIM (eta = 0) loop
            x0 = layer.denoise(a, torch.full((B,), t_now), hist)
            eps = (a - layer.abar[t_now].sqrt() * x0) / (1 - layer.abar[t_now]).sqrt()
            a = layer.abar[t_next].sqrt() * x0 + (1 - layer.abar[t_next]).sqrt() * eps
        c, d, e, p = layer.chain_coefficients(hist)
        collapsed = c * layer.start_map(a0, None) + d * layer.prior_map(hist) + e @ p
        torch.testing.assert_close(collapsed, x0, rtol=1e-4, atol=1e-4)
        # The fused mean-mode path (no map in memory) gives what the explicit path gives.
        fused = layer(x, valid).out
        explicit = layer(x, valid, return_weights=True).out
        torch.testing.assert_close(fused[valid], explicit[valid], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("options", [{}, {"decoder": "gate"}, {"posterior": "target", "free_bits": 0.0}])
def test_vgenatt_mean_mode_gives_what_sampling_gives_with_zero_noise(options: dict, monkeypatch) -> None:
    # `mean` mode runs folded linear maps for speed; with eps = 0 the sampled path decodes z = mu
    # unfolded. make() wakes the zero-initialised decoder, so the latent path counts here.
    layer = make("vgenatt", **options).eval()
    x, valid = batch()
    with torch.no_grad():
        folded = layer(x, valid).out
        layer.set_inference_mode("sample")
        monkeypatch.setattr(torch, "randn_like", torch.zeros_like)
        unfolded = layer(x, valid).out
    torch.testing.assert_close(folded[valid], unfolded[valid], rtol=1e-5, atol=1e-5)
