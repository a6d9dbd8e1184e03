"""The verdict table of `benchmarks/genatt_table.py` (issue 14: the README's "which attention to serve"):
seeds are counted as wins, ties or losses by the paired test's sign and p-value, and the tables are
written only between their markers, with a lost marker an error rather than a stale table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from genatt_table import verdict_table, write_tables  # noqa: E402

SETTINGS = {"dropout": 0.5, "lr": 0.001, "max_len": 50}


def run(seed: int, delta: float, p: float, delta_cc: float | None = 0.0001, kind: str = "vgenatt") -> dict:
    return {"set": "beauty", "loss": "ce", "kind": kind, "options": {}, "seed": seed, "train_args": SETTINGS,
            "paired": {"delta_ndcg10": delta, "ci95": [0, 0], "p": p, "delta_cc10": delta_cc}}


def rows(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]


def test_seeds_count_as_wins_ties_and_losses_by_sign_and_significance() -> None:
    runs = [run(1, +.0023, .001), run(2, +.0030, .20), run(3, -.0027, .0004, delta_cc=-.0002),
            {"set": "beauty", "loss": "ce", "kind": "softmax", "options": {}, "seed": 1, "train_args": SETTINGS}]
    [row] = rows(verdict_table(runs))
    assert row[2] == "vgenatt" and row[4] == "3"
    assert row[5] == "1 / 1 / 1"
    assert row[6] == "+0.0009"
    assert row[7] == "2 of 3"


def test_kinds_and_missing_diversity_are_kept_apart() -> None:
    runs = [run(1, +.002, .01, delta_cc=None), run(1, -.001, .5, kind="dgenatt")]
    by_variant = {row[2]: row for row in rows(verdict_table(runs))}
    assert by_variant["vgenatt"][5] == "1 / 0 / 0" and by_variant["vgenatt"][7] == "—"
    assert by_variant["dgenatt"][5] == "0 / 1 / 0"


def test_tables_replace_only_the_text_between_their_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- genatt-verdict:begin -->\nold\n<!-- genatt-verdict:end -->\nrest\n")
    write_tables({"verdict": "| new |"}, [readme])
    assert readme.read_text() == "intro\n<!-- genatt-verdict:begin -->\n| new |\n<!-- genatt-verdict:end -->\nrest\n"


def test_a_table_without_a_home_or_a_file_without_markers_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("<!-- genatt-verdict:begin -->\n<!-- genatt-verdict:end -->\n")
    with pytest.raises(SystemExit, match="tuning"):
        write_tables({"verdict": "v", "tuning": "t"}, [readme])
    assert "\nv\n" not in readme.read_text(), "nothing is written when a table has no home"
    plain = tmp_path / "plain.md"
    plain.write_text("no tables here\n")
    with pytest.raises(SystemExit, match="plain.md"):
        write_tables({"verdict": "v"}, [plain])


def test_batches_at_the_same_settings_are_not_pooled() -> None:
    first, rerun = run(1, +.001, .3), run(1, -.002, .01) | {"tag": "picks"}
    by_settings = {row[3]: row for row in rows(verdict_table([first, rerun]))}
    assert by_settings["dropout 0.5, lr 0.001, L 50"][5] == "0 / 1 / 0"
    assert by_settings["dropout 0.5, lr 0.001, L 50; batch picks"][5] == "0 / 0 / 1"
