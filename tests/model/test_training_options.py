"""Issue 31's training options: the LiGR block and SwiGLU FFN (shapes, today's layout unchanged),
many-negative sampled softmax with in-batch/uniform/mixed negatives and logQ (against hand-computed
values), label smoothing (against torch's), the learning-rate schedule, and that all of them travel
in checkpoints — old checkpoints, saved before the fields existed, still load and score the same."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from seqrec.model.checkpoint import load_checkpoint, read_payload, save_checkpoint
from seqrec.model.config import BLOCKS, FFNS, ModelConfig
from seqrec.model.data import ItemMap, leave_one_out, synthetic_dataset
from seqrec.model.sasrec import SASRec, cross_entropy
from seqrec.model.train import TrainConfig, lr_factor, train, training_tensors, with_training_options
from seqrec.pipeline.cli import main

N_ITEMS = 30


def make_model(block: str = "sasrec", ffn: str = "relu", seed: int = 0) -> SASRec:
    torch.manual_seed(seed)
    return SASRec(ModelConfig(n_items=N_ITEMS, max_len=8, d_model=16, n_heads=2, block=block, ffn=ffn))


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    items = torch.tensor([[0, 0, 0, 3, 7, 1, 9, 4], [5, 6, 2, 8, 11, 12, 13, 14], [0, 0, 0, 0, 0, 0, 3, 21]])
    targets = torch.roll(items, -1, dims=1)
    targets[:, -1] = torch.tensor([3, 3, 5])
    targets[items == 0] = 0
    return items, targets


# ---- blocks and feed-forwards ------------------------------------------------------------------

@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("ffn", FFNS)
def test_every_block_and_ffn_keeps_shapes_padding_and_the_serving_path(block: str, ffn: str) -> None:
    model = make_model(block, ffn).eval()
    items, targets = batch()
    with torch.no_grad():
        hidden, _ = model.encode(items)
        scores = model.score_last(items)
    assert hidden.shape == (3, 8, 16) and scores.shape == (3, N_ITEMS + 1)
    assert torch.all(hidden[items == 0] == 0)
    torch.testing.assert_close(scores[:, 1:], (hidden[:, -1] @ model.item_emb.weight.T)[:, 1:])
    model.train()
    out = model.loss(items, targets, n_negatives=6, negative_mix="mixed", logq=True, label_smoothing=0.1)
    out.total.backward()
    assert torch.isfinite(out.total) and model.item_emb.weight.grad[0].abs().sum() == 0


def test_todays_layout_has_no_new_weights_and_the_options_add_theirs() -> None:
    """The default block and FFN keep today's state dict (old checkpoints' weights fit it exactly)."""
    keys = set(make_model().state_dict())
    assert not any("gate" in k or "fc3" in k for k in keys)
    assert {k for k in make_model("ligr").state_dict()} - keys == {
        f"blocks.{i}.{g}.{p}" for i in range(2) for g in ("gate_attn", "gate_ffn") for p in ("weight", "bias")}
    assert {k for k in make_model(ffn="swiglu").state_dict()} - keys == {
        f"blocks.{i}.ffn.fc3.{p}" for i in range(2) for p in ("weight", "bias")}


def test_ligr_gate_scales_each_residual_update_by_a_sigmoid_of_the_stream() -> None:
    model = make_model("ligr").eval()
    block = model.blocks[0]
    x, update = torch.randn(2, 3, 16), torch.randn(2, 3, 16)
    expected = x + torch.sigmoid(x @ block.gate_attn.weight.T + block.gate_attn.bias) * update
    torch.testing.assert_close(block._residual(x, update, block.gate_attn), expected)
    assert torch.equal(block._residual(x, update, None), x + update)


def test_bad_block_or_ffn_is_refused() -> None:
    with pytest.raises(ValueError, match="block must be one of sasrec, ligr"):
        ModelConfig(n_items=3, block="hstu")
    with pytest.raises(ValueError, match="ffn must be one of relu, swiglu"):
        ModelConfig(n_items=3, ffn="gelu")


# ---- sampled softmax: negatives and logQ -------------------------------------------------------

def test_negatives_log_expected_counts_by_hand() -> None:
    """y holds item 3 twice, 5 and 7 once (M = 4): an in-batch draw is 3 with q = 1/2, 5 or 7 with
    q = 1/4; a uniform draw any item with q = 1/30. With n = 4 draws the logQ terms are log(4 q):
    log 2, log 1, log 1 in-batch and log(4/30) uniform."""
    model = make_model()
    y = torch.tensor([3, 3, 5, 7])
    by_hand = {3: math.log(2.0), 5: 0.0, 7: 0.0}
    torch.manual_seed(1)
    neg, log_expected = model._negatives(y, 4, "inbatch")
    assert set(neg.tolist()) <= {3, 5, 7}
    torch.testing.assert_close(log_expected, torch.tensor([by_hand[j] for j in neg.tolist()]))
    torch.manual_seed(1)
    neg, log_expected = model._negatives(y, 4, "mixed")  # 2 uniform draws first, then 2 in-batch
    assert neg.shape == (4,)
    torch.testing.assert_close(log_expected[:2], torch.full((2,), math.log(4 / N_ITEMS)))
    torch.testing.assert_close(log_expected[2:], torch.tensor([by_hand[j] for j in neg[2:].tolist()]))
    torch.manual_seed(1)
    _, log_expected = model._negatives(y, 4, "uniform")
    torch.testing.assert_close(log_expected, torch.full((4,), math.log(4 / N_ITEMS)))


def test_sampled_loss_with_logq_is_the_hand_written_formula() -> None:
    """loss = mean over positions of -s_pos + log(exp(s_pos) + sum over unmasked negatives of
    exp(s_j - log(n q_j))), an accidental hit of the positive left out."""
    model = make_model().eval()  # no dropout: the same hidden states twice
    items, targets = batch()
    torch.manual_seed(3)
    neg, log_expected = model._negatives(targets[targets != 0], 8, "mixed")
    torch.manual_seed(3)
    got = model.loss(items, targets, n_negatives=8, negative_mix="mixed", logq=True).ce
    with torch.no_grad():
        hidden, _ = model.encode(items)
    h, y = hidden[targets != 0], targets[targets != 0]
    emb = model.item_emb.weight
    losses = []
    for row, pos in zip(h, y):
        s_pos = row @ emb[pos]
        s_neg = [row @ emb[j] - c for j, c in zip(neg, log_expected) if j != pos]
        losses.append(-s_pos + torch.logsumexp(torch.stack([s_pos, *s_neg]), 0))
    torch.testing.assert_close(got, torch.stack(losses).mean())


def test_uniform_sampled_loss_is_unchanged_from_before_the_options() -> None:
    """Uniform negatives without logQ draw and score exactly as the one sampled softmax before issue 31."""
    model = make_model().eval()
    items, targets = batch()
    torch.manual_seed(5)
    got = model.loss(items, targets, n_negatives=7).ce
    torch.manual_seed(5)
    neg = torch.randint(1, N_ITEMS + 1, (7,))  # what the old code drew
    with torch.no_grad():
        hidden, _ = model.encode(items)
    h, y = hidden[targets != 0], targets[targets != 0]
    neg_logit = (h @ model.item_emb(neg).T).masked_fill(neg[None] == y[:, None], float("-inf"))
    logits = torch.cat([(h * model.item_emb(y)).sum(-1, keepdim=True), neg_logit], 1)
    assert torch.equal(got, F.cross_entropy(logits, torch.zeros_like(y)))


# ---- label smoothing -----------------------------------------------------------------------------

def test_label_smoothing_matches_torch_and_leaves_masked_classes_out() -> None:
    torch.manual_seed(0)
    logits, target = torch.randn(5, 9), torch.tensor([0, 3, 8, 1, 1])
    assert torch.equal(cross_entropy(logits, target), F.cross_entropy(logits, target))
    torch.testing.assert_close(cross_entropy(logits, target, 0.1), F.cross_entropy(logits, target, label_smoothing=0.1))
    masked = torch.cat([torch.full((5, 1), float("-inf")), logits], 1)  # a padding column, as in the full CE
    torch.testing.assert_close(cross_entropy(masked, target + 1, 0.1),
                               F.cross_entropy(logits, target, label_smoothing=0.1))
    assert torch.isfinite(cross_entropy(masked, target + 1, 0.3))


def test_smoothed_losses_are_finite_for_full_and_sampled() -> None:
    model = make_model()
    items, targets = batch()
    for kw in ({}, {"n_negatives": 6, "negative_mix": "inbatch", "logq": True}):
        plain = model.loss(items, targets, **kw).ce
        smoothed = model.loss(items, targets, label_smoothing=0.2, **kw).ce
        assert torch.isfinite(smoothed) and not torch.equal(plain, smoothed)


# ---- schedule --------------------------------------------------------------------------------------

def test_lr_factor_warms_up_then_stays_or_decays() -> None:
    assert lr_factor(0, "constant", 0, 100) == 1.0
    assert [lr_factor(s, "constant", 4, 100) for s in (0, 1, 3, 4, 99)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    cosine = [lr_factor(s, "cosine", 10, 110) for s in (0, 9, 10, 60, 110, 500)]
    assert cosine[:3] == [0.1, 1.0, 1.0]
    assert cosine[3] == pytest.approx(0.5) and cosine[4] == pytest.approx(0.0) and cosine[5] == pytest.approx(0.0)
    assert lr_factor(25, "cosine", 0, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


# ---- configs, checkpoints, retrain --------------------------------------------------------------

def test_train_config_refuses_combinations_that_cannot_work() -> None:
    for kw, message in [({"logq": True}, "sampled softmax"), ({"negative_mix": "inbatch"}, "sampled softmax"),
                        ({"n_negatives": 1, "negative_mix": "mixed"}, "n_negatives >= 2"),
                        ({"objective": "bce", "label_smoothing": 0.1}, "bce"),
                        ({"label_smoothing": 1.0}, r"\[0, 1\)"), ({"schedule": "step"}, "schedule"),
                        ({"warmup_steps": 10, "lr_plateau_patience": 2}, "plateau")]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**kw)
    assert TrainConfig(n_negatives=256, negative_mix="mixed", logq=True, label_smoothing=0.1).loss_label == \
        "sampled:256:mixed+logq:ls0.1"
    assert TrainConfig(n_negatives=1).loss_label == "sampled:1"  # the genatt results' names stay


def test_checkpoint_round_trip_carries_block_and_ffn(tmp_path: Path) -> None:
    model = make_model("ligr", "swiglu").eval()
    items = ItemMap([f"i{n}" for n in range(N_ITEMS)])
    save_checkpoint(tmp_path / "m.pt", model, items, data_fingerprint="x", metrics={})
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert ckpt.config == model.config and (ckpt.config.block, ckpt.config.ffn) == ("ligr", "swiglu")
    with torch.no_grad():
        assert torch.equal(ckpt.model.score_last(batch()[0]), model.score_last(batch()[0]))


def test_a_checkpoint_from_before_the_fields_loads_and_scores_the_same(tmp_path: Path) -> None:
    model = make_model().eval()
    items = ItemMap([f"i{n}" for n in range(N_ITEMS)])
    save_checkpoint(tmp_path / "new.pt", model, items, data_fingerprint="x", metrics={})
    payload = read_payload(tmp_path / "new.pt")
    del payload["config"]["block"], payload["config"]["ffn"]  # what a checkpoint saved before issue 31 holds
    torch.save(payload, tmp_path / "old.pt")
    old = load_checkpoint(tmp_path / "old.pt")
    assert old.config == model.config
    with torch.no_grad():
        assert torch.equal(old.model.score_last(batch()[0]), model.score_last(batch()[0]))
    assert ModelConfig.from_dict({"n_items": 4, "max_len": 10}) == ModelConfig(n_items=4, max_len=10)


def test_training_saves_its_options_and_retrain_can_take_them_back(tmp_path: Path) -> None:
    """A two-epoch run on a tiny synthetic set (about a second): the schedule sets each step's rate, and
    best.pt's train config gives a later training (retrain's) the same loss and schedule."""
    torch.set_num_threads(1)
    cfg = TrainConfig(epochs=2, batch_size=64, lr=4e-3, n_negatives=8, negative_mix="mixed", logq=True,
                      label_smoothing=0.1, schedule="cosine", warmup_steps=3, progress=False, device="cpu", seed=0)
    dataset = synthetic_dataset(120, 30, n_clusters=3, seed=2)
    result = train(dataset, ModelConfig(n_items=1, max_len=10, d_model=16, n_blocks=1, block="ligr", ffn="swiglu"),
                   cfg, tmp_path)
    windows, _ = training_tensors(leave_one_out(dataset, ItemMap.from_items(dataset.item_ids())), 10)
    steps = math.ceil(windows.shape[0] / cfg.batch_size)
    for record in result.history:  # the rate of each epoch's last step
        step = record["epoch"] * steps - 1
        assert record["lr"] == pytest.approx(cfg.lr * lr_factor(step, "cosine", 3, 2 * steps))
    best = load_checkpoint(result.best_path)
    assert (best.config.block, best.config.ffn) == ("ligr", "swiglu")
    carried = with_training_options(TrainConfig(epochs=20, patience=3), best.extra["train_config"])
    assert carried.loss_options() == cfg.loss_options()
    assert (carried.schedule, carried.warmup_steps, carried.epochs) == ("cosine", 3, 20)
    old = {k: v for k, v in cfg.to_dict().items() if k not in ("negative_mix", "logq", "label_smoothing")}
    assert with_training_options(TrainConfig(), old).negative_mix == "uniform"  # an older file keeps the default


@pytest.mark.parametrize("args, message", [
    (["--logq"], "--loss sampled"),
    (["--loss", "sampled", "--negatives", "1", "--negative-mix", "mixed"], "n_negatives >= 2"),
    (["--schedule", "cosine", "--lr-plateau-patience", "2"], "plateau"),
    (["--loss", "bce", "--label-smoothing", "0.1"], "bce"),
    (["--block", "hstu"], "hstu"),
])
def test_cli_bad_combinations_are_one_line_errors(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    rc = main(["train", "--data", str(tmp_path / "unread.csv"), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and message in err
