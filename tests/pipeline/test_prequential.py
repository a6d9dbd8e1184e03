"""Prequential scoring on logs whose right answers are known by construction."""

from __future__ import annotations

import math

import pytest

from seqrec.pipeline.evaluation.prequential import score_shown_lists, simulate_serving
from seqrec.pipeline.serving.source import ClickEvent


def click(user: str, n: int, item: str, minute: int) -> ClickEvent:
    return ClickEvent(event_id=f"{user}-{n}", user_id=user, item_id=item, timestamp=minute * 60_000)


def test_each_click_is_scored_against_the_list_after_the_previous_click() -> None:
    clicks = [
        click("a", 0, "x", 0),
        click("b", 0, "p", 1),
        click("a", 1, "y", 2),  # list after a-0 has y at rank 1
        click("b", 1, "q", 3),  # list after b-0 has q at rank 3
        click("a", 2, "z", 4),  # list after a-1 lacks z
        click("b", 2, "r", 5),  # b-1 was never answered
    ]
    shown = {"a-0": ["y", "m", "n"], "b-0": ["m", "n", "q"], "a-1": ["m", "n", "o"]}
    report = score_shown_lists(clicks, shown, ks=(1, 3), catalogue_size=10)
    assert (report.scored, report.first_clicks, report.unanswered) == (3, 2, 1)
    assert report.overall["HR@1"] == pytest.approx(1 / 3)
    assert report.overall["HR@3"] == pytest.approx(2 / 3)
    assert report.overall["NDCG@3"] == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert report.overall["MRR@3"] == pytest.approx((1 + 1 / 3) / 3)
    # Items y, m, n, q, o were shown out of a catalogue of 10.
    assert report.overall["coverage@3"] == pytest.approx(5 / 10)
    # a: a hit at rank 1 and a miss; b: a hit at rank 3 (b-2 had no list to score).
    assert report.user_ndcg == pytest.approx({"a": 1 / 2, "b": 1 / math.log2(4)})


def test_windows_split_by_log_time() -> None:
    clicks = [click("a", 0, "x", 0), click("a", 1, "y", 10), click("a", 2, "z", 70)]
    shown = {"a-0": ["y"], "a-1": ["q"]}
    report = score_shown_lists(clicks, shown, ks=(1,), window_ms=3_600_000)
    assert [w["HR@1"] for w in report.windows] == [1.0, 0.0]
    assert [w["start_ms"] for w in report.windows] == [0, 3_600_000]


def test_simulated_serving_sees_exactly_the_history_before_each_click() -> None:
    clicks = [click("a", 0, "x", 0), click("b", 0, "p", 1), click("a", 1, "y", 2), click("a", 2, "z", 3)]
    seen: list[tuple[str, ...]] = []

    def recommend(histories):
        seen.extend(tuple(h) for h in histories)
        return [[h[-1] + "'"] for h in histories]

    shown = simulate_serving(clicks, recommend, history_len=2, batch_size=3)
    assert seen == [("x",), ("p",), ("x", "y"), ("y", "z")]
    assert shown == {"a-0": ["x'"], "b-0": ["p'"], "a-1": ["y'"], "a-2": ["z'"]}


def test_holdout_scoring_answers_only_what_the_holdout_needs() -> None:
    clicks = [click("a", 0, "x", 0), click("b", 0, "p", 1), click("a", 1, "y", 2), click("a", 2, "z", 3)]
    asked: list[tuple[str, ...]] = []

    def recommend(histories):
        asked.extend(tuple(h) for h in histories)
        return [["z"] for _ in histories]

    shown = simulate_serving(clicks, recommend, answer_from=3)
    # a-1 is a's last click before the holdout and a clicks again; b never does.
    assert set(shown) == {"a-1", "a-2"}
    report = score_shown_lists(clicks, shown, ks=(1,), score_from=3)
    assert report.scored == 1 and report.overall["HR@1"] == 1.0
