"""Selection in `benchmarks/genatt_tune.py` (issue 14, item 5): each kind picks, on validation, the best
of its plain variant's dropout x lr grid and its option variants; a kind whose plain grid is unfinished
is not selected at all."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from genatt_tune import select, without_partial_grids  # noqa: E402

GRID = ("dropout 0.2, lr 0.001, L 50", "dropout 0.5, lr 0.001, L 50")


def run(kind: str, setting: str, ndcg: float, options: dict | None = None) -> dict:
    options = options or {}
    variant = kind + "".join(f"_{k}={v}" for k, v in options.items())
    return {"loss": "ce", "kind": kind, "variant": variant, "options": options, "setting": setting,
            "seed": 1, "valid": {"NDCG@10": ndcg}}


def test_an_option_variant_that_leads_on_validation_is_the_kinds_choice() -> None:
    runs = [run("dgenatt", GRID[0], .068), run("dgenatt", GRID[1], .071),
            run("dgenatt", GRID[1], .073, {"denoise_weight": 0}), run("softmax", GRID[0], .069),
            run("softmax", GRID[1], .0713)]
    chosen = select(runs)
    assert chosen[("ce", "dgenatt")][0] == ("dgenatt_denoise_weight=0", GRID[1])
    assert chosen[("ce", "softmax")][0] == ("softmax", GRID[1])


def test_a_trailing_option_variant_leaves_the_plain_grids_choice() -> None:
    runs = [run("vgenatt", GRID[0], .069), run("vgenatt", GRID[1], .070),
            run("vgenatt", GRID[1], .066, {"latent_dim": 32})]
    assert select(runs)[("ce", "vgenatt")][0] == ("vgenatt", GRID[1])


def test_option_variants_need_not_cover_the_grid_but_the_plain_variant_must() -> None:
    runs = [run("softmax", GRID[0], .069), run("softmax", GRID[1], .071),
            run("dgenatt", GRID[1], .071), run("dgenatt", GRID[1], .075, {"rank": 32}),
            run("vgenatt", GRID[0], .069), run("vgenatt", GRID[1], .070),
            run("vgenatt", GRID[1], .066, {"latent_dim": 32})]
    kept, lines = without_partial_grids(runs)
    assert {r["kind"] for r in kept} == {"softmax", "vgenatt"}
    assert len([r for r in kept if r["kind"] == "vgenatt"]) == 3
    assert lines == ["ce dgenatt: 1 of 2 settings finished; not selected"]


def test_a_kind_with_only_option_variants_is_not_selected() -> None:
    runs = [run("softmax", GRID[0], .069), run("softmax", GRID[1], .071),
            run("dgenatt", GRID[1], .075, {"rank": 32})]
    kept, lines = without_partial_grids(runs)
    assert {r["kind"] for r in kept} == {"softmax"}
    assert lines == ["ce dgenatt: 0 of 2 settings finished; not selected"]
