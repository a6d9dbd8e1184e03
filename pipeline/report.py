"""The offline-evaluation report: a Markdown page with PNG plots, and a JSON file with every number."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402

from pipeline.offline_eval import RunResult  # noqa: E402


def _day(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def write_report(runs: Sequence[RunResult], out_dir: str | Path, title: str, metric: str = "NDCG@10") -> Path:
    """Write report.md, report.json and the plots into `out_dir`; returns the Markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps({"title": title, "runs": [r.to_dict() for r in runs]}, indent=2))

    fig, ax = plt.subplots(figsize=(8, 4))
    for run in runs:
        ax.plot([_day(w["start_ms"]) for w in run.report.windows], [w.get(metric, 0.0) for w in run.report.windows],
                marker=".", label=run.name)
    ax.set(title=f"{metric} per window of log time", ylabel=metric)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.savefig(out / "metric_over_time.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    for run in runs:
        if run.batch_latency_ms:
            ax.hist(run.batch_latency_ms, bins=40, alpha=0.5, label=run.name)
    ax.set(title="latency per model call (ms)", xlabel="ms", ylabel="calls")
    ax.legend(fontsize=8)
    fig.savefig(out / "latency.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.5 * len(runs)))
    for row, run in enumerate(runs):
        times = [_day(t) for t, _ in run.versions]
        ax.scatter(times, [row] * len(times), marker="|", s=300)
    ax.set_yticks(range(len(runs)), [r.name for r in runs])
    ax.set(title="model versions serving (a mark = a new version)")
    fig.autofmt_xdate()
    fig.savefig(out / "versions.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    coverage_key = next((k for k in runs[0].report.overall if k.startswith("coverage@")), None) if runs else None
    if coverage_key:
        fig, ax = plt.subplots(figsize=(8, 3))
        ax.barh([r.name for r in runs], [r.report.overall[coverage_key] for r in runs])
        ax.set(title=f"catalogue {coverage_key}", xlim=(0, 1))
        fig.savefig(out / "coverage.png", dpi=110, bbox_inches="tight")
        plt.close(fig)

    keys = [k for k in runs[0].report.overall if k != "events"] if runs else []
    lines = [f"# {title}", "", f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.", "",
             "Prequential: each click is scored against the list shown after the same user's previous click.", "",
             "| run | scored | " + " | ".join(keys) + " | versions | seconds |",
             "|---|---:|" + "---:|" * len(keys) + "---:|---:|"]
    for run in runs:
        values = " | ".join(f"{run.report.overall[k]:.4f}" for k in keys)
        lines.append(f"| {run.name} | {run.report.scored:,} | {values} | {len(run.versions)} | {run.seconds:.0f} |")
    lines += ["", "![metric over time](metric_over_time.png)", "", "![latency](latency.png)", "",
              "![versions](versions.png)", ""]
    if coverage_key:
        lines += ["![coverage](coverage.png)", ""]
    lines += ["Every number is in `report.json`."]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
