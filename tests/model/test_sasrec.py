"""Backbone invariants, run for every registered attention kind: shapes, zeroed padding, no
information from the future, padding invariance, attention rows summing to 1, the two losses."""

from __future__ import annotations

import pytest
import torch

from seqrec.model.attention import attention_kinds
from seqrec.model.config import ModelConfig
from seqrec.model.sasrec import SASRec

N_ITEMS = 30


def make_model(kind: str, max_len: int = 8, seed: int = 0) -> SASRec:
    torch.manual_seed(seed)
    return SASRec(ModelConfig(n_items=N_ITEMS, max_len=max_len, d_model=16, n_heads=2, attention=kind))


def batch() -> torch.Tensor:
    return torch.tensor([[0, 0, 0, 3, 7, 1, 9, 4], [5, 6, 2, 8, 11, 12, 13, 14], [0, 0, 0, 0, 0, 0, 0, 21]])


@pytest.mark.parametrize("kind", attention_kinds())
def test_shapes_and_zeroed_padding(kind: str) -> None:
    model = make_model(kind)
    items = batch()
    hidden, aux = model.encode(items)
    assert hidden.shape == (3, 8, 16)
    assert aux.shape == ()
    assert torch.all(hidden[items == 0] == 0)
    model.eval()
    scores = model.score_last(items)
    assert scores.shape == (3, N_ITEMS + 1)
    assert torch.all(scores[:, 0] == float("-inf"))
    assert torch.isfinite(scores[:, 1:]).all()


@pytest.mark.parametrize("kind", attention_kinds())
def test_no_information_from_the_future(kind: str) -> None:
    model = make_model(kind).eval()
    items = batch()
    with torch.no_grad():
        base, _ = model.encode(items)
        for t in range(items.shape[1] - 1):
            changed = items.clone()
            changed[:, t + 1:] = torch.randint(1, N_ITEMS + 1, changed[:, t + 1:].shape)
            out, _ = model.encode(changed)
            # Positions after t may change (and padding after t may now be items); <= t must not.
            keep = items[:, : t + 1] != 0
            torch.testing.assert_close(out[:, : t + 1][keep], base[:, : t + 1][keep], msg=f"{kind}: t={t}")


SERVED_VARIANTS = [(kind, {}) for kind in attention_kinds()] + [
    ("softmax", {"logit_noise": 0.2}),
    ("vgenatt", {"decoder": "gate", "posterior": "target"}),
    ("dgenatt", {"teacher": "target"}),
]


@pytest.mark.parametrize(("kind", "options"), SERVED_VARIANTS)
def test_score_last_matches_the_full_forward_at_the_last_position(kind: str, options: dict) -> None:
    # score_last computes the last block for the last query alone; it must rank exactly as the
    # full forward does at that position.
    torch.manual_seed(3)
    config = ModelConfig(n_items=N_ITEMS, max_len=8, d_model=16, n_heads=2, attention=kind, attention_options=options)
    model = SASRec(config).eval()
    for p in model.parameters():  # the zero-initialised generative parts must take part too
        torch.nn.init.normal_(p, std=0.3)
    items = batch()
    with torch.no_grad():
        hidden, _ = model.encode(items)
        full = model._logits(hidden[:, -1, :])
        fast = model.score_last(items)
    assert fast.shape == full.shape
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", attention_kinds())
def test_padding_does_not_change_scores(kind: str) -> None:
    model = make_model(kind, max_len=12).eval()
    items = batch()
    with torch.no_grad():
        short = model.score_last(items)
        longer = model.score_last(torch.nn.functional.pad(items, (4, 0)))
    torch.testing.assert_close(short[:, 1:], longer[:, 1:])


@pytest.mark.parametrize("kind", attention_kinds())
def test_attention_rows_sum_to_one_over_allowed_positions(kind: str) -> None:
    model = make_model(kind).eval()
    items = batch()
    with torch.no_grad():
        maps = model.attention_maps(items)
    if all(m is None for m in maps):
        pytest.skip(f"{kind} returns no attention maps")
    valid = items != 0
    allowed = torch.ones(8, 8, dtype=torch.bool).tril() & valid[:, None, :]  # (B, L, L)
    for w in maps:
        assert w.shape == (3, 2, 8, 8)
        w = w.permute(0, 2, 1, 3)[valid]  # (valid queries, H, L)
        a = allowed[valid][:, None, :].expand_as(w)
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:2]))
        assert torch.all(w[~a] == 0)


def test_losses_are_finite_and_ignore_padding_targets() -> None:
    model = make_model("softmax")
    items = batch()
    targets = torch.roll(items, -1, dims=1)
    targets[:, -1] = torch.tensor([2, 3, 4])
    targets[items == 0] = 0
    full = model.loss(items, targets)
    sampled = model.loss(items, targets, n_negatives=5)
    assert torch.isfinite(full.total) and torch.isfinite(sampled.total)
    full.total.backward()
    assert model.item_emb.weight.grad[0].abs().sum() == 0  # padding row never learns
    none = model.loss(items, torch.zeros_like(items))
    assert none.ce.item() == 0.0


def test_rejects_sequences_longer_than_max_len() -> None:
    with pytest.raises(ValueError, match="max_len"):
        make_model("softmax").encode(torch.ones(1, 9, dtype=torch.long))


def test_set_training_progress_reaches_submodules() -> None:
    model = make_model("softmax")
    seen: list[float] = []

    class Probe(torch.nn.Module):
        def set_training_progress(self, p: float) -> None:
            seen.append(p)

    model.blocks[0].probe = Probe()
    model.set_training_progress(0.25)
    assert seen == [0.25]
