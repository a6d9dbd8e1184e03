"""Replay through the real pipeline and in-process give the same prequential numbers, and the
worker's traffic recording gives the log back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqrec.model.data import synthetic_clicks
from seqrec.pipeline.evaluation.clicklog import clicks_from_rows, read_click_log
from seqrec.pipeline.evaluation.offline_eval import Cadence, EvalOptions, evaluate_in_process, evaluate_through_kafka


def test_in_process_and_through_kafka_agree(deployment, tiny_checkpoint: Path, tmp_path: Path) -> None:
    d = deployment
    w = d.worker("--record-dir", str(tmp_path / "traffic"))
    w.wait_ready()
    # The checkpoint was trained on synthetic_clicks(200, 100, seed=1); replay other users.
    clicks = list(clicks_from_rows(synthetic_clicks(60, 100, seed=5)))[:1200]
    options = EvalOptions(ks=(5, 10), window_ms=None, history_len=d.history_len)

    through_kafka = evaluate_through_kafka(clicks, d.bootstrap, d.clicks, d.recommendations, options,
                                           speed=None, timeout_s=120, progress=False)
    in_process = evaluate_in_process(clicks, tiny_checkpoint, Cadence(), options, "in-process", progress=False)

    assert through_kafka.report.unanswered == 0
    assert through_kafka.report.scored == in_process.report.scored > 1000
    for name, value in in_process.report.overall.items():
        assert through_kafka.report.overall[name] == pytest.approx(value, abs=1e-9), name
    assert in_process.report.overall["HR@10"] > 0

    # The worker recorded what it consumed and produced: every click once, each user's in order
    # (partitions interleave differently from the original log).
    w.stop()
    recorded = read_click_log(tmp_path / "traffic" / "clicks-000001.jsonl", sort_by_time=False)
    assert not recorded.bad_lines
    assert sorted(c.event_id for c in recorded.clicks) == sorted(c.event_id for c in clicks)
    for user in {c.user_id for c in clicks}:
        assert [c.item_id for c in recorded.clicks if c.user_id == user] == [
            c.item_id for c in clicks if c.user_id == user]
    answers = (tmp_path / "traffic" / "recommendations-000001.jsonl").read_text().splitlines()
    assert {json.loads(line)["event_id"] for line in answers} == {c.event_id for c in clicks}
