"""Issue 14: the target-aware posterior of V-GenAtt (and D-GenAtt's target-aware teacher), the logit-noise control of softmax and the BCE
objective. The leakage tests are the point: outside training nothing may depend on the future, and in
training the only path from item t+1 into position t is the posterior."""

from __future__ import annotations

import pytest
import torch

from seqrec.model.attention import build_attention
from seqrec.model.config import ModelConfig
from seqrec.model.sasrec import SASRec
from seqrec.model.train import TrainConfig

B, L, D, H = 3, 7, 16, 2
TARGET = {"posterior": "target", "decoder": "gate", "free_bits": 0.0, "beta_cap": 1.0}
TARGET_AWARE = [("vgenatt", TARGET), ("dgenatt", {"teacher": "target"})]


def make(kind: str, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(n_items=50, max_len=L, d_model=D, n_heads=H, dropout=0.0, attention=kind, attention_options=options)
    layer = build_attention(cfg)
    with torch.no_grad():  # wake the zero-initialised paths (posterior correction, gates)
        for p in layer.parameters():
            if p.abs().sum() == 0 and p.dim() > 0:
                p.normal_(0, 0.3)
    return layer


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, L, D, generator=g)
    target = torch.randn(B, L, D, generator=g)
    lengths = torch.tensor([L, 4, 1])
    valid = torch.arange(L)[None, :] >= (L - lengths)[:, None]
    return x, target, valid


def run(layer: torch.nn.Module, x, valid, target=None) -> torch.Tensor:
    torch.manual_seed(7)  # training samples z: the same draws for every call
    return layer(x, valid, target=target).out


def assert_no_future(layer: torch.nn.Module, x: torch.Tensor, valid: torch.Tensor) -> None:
    """Changing the inputs after t changes no output at or before t."""
    base = run(layer, x, valid)
    for t in range(L - 1):
        x2 = x.clone()
        x2[:, t + 1:] += torch.randn_like(x2[:, t + 1:]) * 3
        torch.testing.assert_close(run(layer, x2, valid)[:, : t + 1], base[:, : t + 1])


@pytest.mark.parametrize("kind, options", TARGET_AWARE)
def test_eval_output_ignores_the_future_and_the_target(kind: str, options: dict) -> None:
    layer = make(kind, **options).eval()
    x, target, valid = batch()
    torch.testing.assert_close(run(layer, x, valid, target=target * 5), run(layer, x, valid), rtol=0, atol=0)
    assert_no_future(layer, x, valid)


@pytest.mark.parametrize("kind, options", TARGET_AWARE)
def test_training_without_the_target_branch_sees_no_future(kind: str, options: dict) -> None:
    layer = make(kind, **options).train()
    x, _, valid = batch()
    assert_no_future(layer, x, valid)


@pytest.mark.parametrize("kind, options", TARGET_AWARE)
def test_in_training_position_t_reads_its_own_target_and_no_later_one(kind: str, options: dict) -> None:
    layer = make(kind, **options).train()
    x, target, valid = batch()
    base = run(layer, x, valid, target)
    for t in range(L - 1):
        later = target.clone()
        later[:, t + 1:] += 3.0
        torch.testing.assert_close(run(layer, x, valid, later)[:, : t + 1], base[:, : t + 1])
        if t > 0:  # with one key to attend to, the weights (all the latent moves) are 1 whatever z is
            own = target.clone()
            own[0, t] += 3.0
            assert not torch.allclose(run(layer, x, valid, own)[0, t], base[0, t])


def test_the_kl_is_against_the_learned_prior_and_zero_without_a_target() -> None:
    layer = make("vgenatt", **TARGET).train()
    layer.set_training_progress(1.0)
    x, target, valid = batch()
    assert layer(x, valid, target=target).aux_loss.item() > 0
    assert layer(x, valid).aux_loss.item() == 0.0
    # Identical posterior and prior: KL 0; a shifted mean: 0.5 * shift^2 per dim (unit variances).
    mu, logvar = torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)
    ok = torch.ones(1, 2, dtype=torch.bool)
    assert layer.penalised_kl(mu, logvar, ok, prior=(mu, logvar)).item() == 0.0
    assert layer.penalised_kl(mu + 2.0, logvar, ok, prior=(mu, logvar)).item() == pytest.approx(4 * 0.5 * 4.0)


@pytest.mark.parametrize("kind, options, branch", [("vgenatt", TARGET, "posterior"),
                                                   ("dgenatt", {"teacher": "target"}, "teacher_query")])
def test_evaluation_and_serving_never_call_the_target_branch(kind: str, options: dict, branch: str) -> None:
    torch.manual_seed(0)
    model = SASRec(ModelConfig(n_items=20, max_len=6, d_model=D, n_heads=H, attention=kind, attention_options=options))
    calls = []
    for block in model.blocks:
        getattr(block.attn, branch).register_forward_hook(lambda *_: calls.append(1))
    items = torch.randint(1, 21, (4, 6))
    targets = torch.randint(1, 21, (4, 6))
    model.train()
    model.loss(items, targets)
    assert len(calls) == len(model.blocks)  # training does use it
    calls.clear()
    model.eval()
    with torch.no_grad():
        model.score_last(items)
        model.loss(items, targets)  # validation loss: targets given, still the prior alone
    assert calls == []


def test_logit_noise_changes_training_outputs_only() -> None:
    plain, noisy = make("softmax"), make("softmax", logit_noise=1.0)
    noisy.load_state_dict(plain.state_dict())
    x, _, valid = batch()
    for layer in (plain, noisy):
        layer.eval()
    torch.testing.assert_close(run(noisy, x, valid), run(plain, x, valid))
    for layer in (plain, noisy):
        layer.train()
    real = valid[..., None].expand(B, L, D)
    assert not torch.allclose(run(noisy, x, valid)[real], run(plain, x, valid)[real])
    assert_no_future(noisy, x, valid)  # still causal under noise


def test_bce_objective_is_sasrecs_binary_cross_entropy() -> None:
    torch.manual_seed(0)
    model = SASRec(ModelConfig(n_items=20, max_len=5, d_model=8, n_heads=1, dropout=0.0)).eval()
    items = torch.tensor([[0, 3, 4, 5, 6], [1, 2, 3, 4, 5]])
    targets = torch.tensor([[0, 4, 5, 6, 7], [2, 3, 4, 5, 0]])
    torch.manual_seed(3)
    loss = model.loss(items, targets, objective="bce").ce
    torch.manual_seed(3)
    hidden, _ = model.encode(items)
    keep = targets != 0
    h, y = hidden[keep], targets[keep]
    neg = torch.randint(1, 21, y.shape)
    pos_s, neg_s = (h * model.item_emb(y)).sum(-1), (h * model.item_emb(neg)).sum(-1)
    expected = -(torch.log(torch.sigmoid(pos_s)) + torch.log(1 - torch.sigmoid(neg_s)) * (neg != y)).mean()
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="objective"):
        model.loss(items, targets, objective="hinge")


@pytest.mark.parametrize("cfg, label", [(TrainConfig(), "ce"), (TrainConfig(objective="bce"), "bce"),
                                        (TrainConfig(n_negatives=1), "sampled:1")])
def test_loss_labels(cfg: TrainConfig, label: str) -> None:
    assert cfg.loss_label == label


def test_bce_with_sampled_negatives_is_refused() -> None:
    with pytest.raises(ValueError, match="one negative"):
        TrainConfig(objective="bce", n_negatives=5)
