"""The table of `benchmarks/quality_screen.py` (issue 31's screen on validation): the default's row
first, each run named by what it changed, each seed's paired Δ starred when p < .05, and the table
written between its own markers."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from quality_screen import MARKERS, table  # noqa: E402
from genatt_table import write_tables  # noqa: E402


def result(name: str, seed: int, ndcg: float, changed: dict, delta: float | None = None, p: float = 1.0) -> dict:
    r = {"set": "beauty", "split": "valid", "name": name, "seed": seed, "changed": changed,
         "valid": {"NDCG@10": ndcg, "HR@10": 2 * ndcg}, "best_epoch": 20, "epochs": 25, "seconds_per_epoch": 44.6}
    if delta is not None:
        r["paired"] = {"NDCG@10": {"mean": delta, "p_value": p}}
    return r


def rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()[2:]]


def test_default_first_then_runs_named_by_their_change_with_significant_seeds_starred() -> None:
    results = [result("ligr", 1, .0720, {"block": "ligr"}, +.0007, .30),
               result("ligr", 2, .0730, {"block": "ligr"}, +.0021, .01),
               result("base", 1, .0713, {}), result("base", 2, .0709, {})]
    base, ligr = rows(table(results))
    assert base[1:4] == ["base", "— (the default)", "1,2"] and base[6] == "baseline"
    assert ligr[1:4] == ["ligr", "block ligr", "1,2"]
    assert ligr[4] == "0.0725 ± 0.0007"
    assert ligr[6] == "+0.0007 (0.300), +0.0021 (0.010)*"
    assert ligr[7] == "45/45" and ligr[8] == "20/20 of 25/25"


def test_the_table_lands_between_its_own_markers(tmp_path: Path) -> None:
    doc = tmp_path / "model.md"
    begin, end = MARKERS["quality-screen"]
    doc.write_text(f"before\n{begin}\nstale\n{end}\nafter\n")
    write_tables({"quality-screen": "| new |"}, [doc], MARKERS)
    assert doc.read_text() == f"before\n{begin}\n| new |\n{end}\nafter\n"
