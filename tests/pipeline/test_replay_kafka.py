"""Replay through the real pipeline and in-process give the same prequential numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.data import synthetic_clicks
from pipeline.clicklog import clicks_from_rows
from pipeline.offline_eval import Cadence, EvalOptions, evaluate_in_process, evaluate_through_kafka


def test_in_process_and_through_kafka_agree(deployment, tiny_checkpoint: Path) -> None:
    d = deployment
    w = d.worker()
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
