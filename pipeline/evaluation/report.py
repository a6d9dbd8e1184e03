"""The offline-evaluation report: a Markdown page with PNG plots, and a JSON file with every number."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from seqrec.pipeline.errors import SeqrecError
from seqrec.pipeline.evaluation.offline_eval import RunResult

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

MISSING_PLOTS = "the report's plots need matplotlib: pip install 'seqrec[report]'"
# A window with fewer scored clicks than SPARSE_WINDOW_CLICKS, and than this share of the median
# window's, is not drawn: a run that ends (or starts) inside a window leaves a few clicks there,
# and their metric is noise that a line would show as a collapse (or a leap).
SPARSE_WINDOW_SHARE = 0.25
SPARSE_WINDOW_CLICKS = 30  # NDCG@10 over 30 clicks still has a standard error near 0.07


def pyplot() -> ModuleType:
    """matplotlib.pyplot, drawing to files only; an optional part (the `report` extra), imported
    when a report is written."""
    try:
        import matplotlib
    except ImportError:
        raise SeqrecError(MISSING_PLOTS) from None
    matplotlib.use("Agg")  # files only; no display on servers
    import matplotlib.pyplot

    return matplotlib.pyplot


def _day(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _time_axis(ax: plt.Axes, runs: Sequence[RunResult]) -> None:
    """Dates that read at any span, from seconds (a demo) to years (a log), over the same range
    in every time plot: from the first window or version to the last."""
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    times = [t for r in runs for t in [w["start_ms"] for w in r.report.windows] + [t for t, _ in r.versions]]
    if times:
        margin = max((max(times) - min(times)) * 0.03, 500)
        ax.set_xlim(_day(min(times) - margin), _day(max(times) + margin))


def drawn_windows(windows: Sequence[dict]) -> tuple[list[dict], int]:
    """(the windows a metric-over-time line draws, how many sparse ones it leaves out)."""
    if not windows:
        return [], 0
    counts = sorted(w["events"] for w in windows)
    floor = min(SPARSE_WINDOW_CLICKS, SPARSE_WINDOW_SHARE * counts[len(counts) // 2])
    drawn = [w for w in windows if w["events"] >= floor]
    return drawn, len(windows) - len(drawn)


def _latency_plot(runs: Sequence[RunResult], path: Path) -> None:
    """One histogram of the steady traffic; a second beside it when some runs had a backlog to
    catch up on, so seconds of queueing do not pass for the system's latency."""
    panels = [("live", lambda r: r.batch_latency_ms)]
    if any(r.catchup_latency_ms for r in runs):
        panels.append(("catch-up: sent while a backlog was being answered", lambda r: r.catchup_latency_ms))
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), 4), squeeze=False)
    for ax, (name, values) in zip(axes[0], panels):
        for run in runs:
            if values(run):
                ax.hist(values(run), bins=40, alpha=0.5, label=f"{run.name} ({len(values(run)):,})")
        ax.set(title=f"{runs[0].latency_label if runs else 'latency (ms)'}: {name}", xlabel="ms", ylabel="count")
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def write_report(runs: Sequence[RunResult], out_dir: str | Path, title: str, metric: str = "NDCG@10") -> Path:
    """Write report.md, report.json and the plots into `out_dir`; returns the Markdown path."""
    plt = pyplot()  # before any file: without matplotlib, no half-written report
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps({"title": title, "runs": [r.to_dict() for r in runs]}, indent=2))

    fig, ax = plt.subplots(figsize=(8, 4))
    for run in runs:
        drawn, left_out = drawn_windows(run.report.windows)
        label = run.name + (f" ({left_out} window(s) with almost no scored clicks not drawn)" if left_out else "")
        ax.plot([_day(w["start_ms"]) for w in drawn], [w.get(metric, 0.0) for w in drawn], marker=".", label=label)
    ax.set(title=f"{metric} per window of log time", ylabel=metric)
    ax.legend(fontsize=8)
    _time_axis(ax, runs)
    fig.savefig(out / "metric_over_time.png", dpi=110, bbox_inches="tight")
    plt.close(fig)

    _latency_plot(runs, out / "latency.png")

    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.5 * len(runs)))
    for row, run in enumerate(runs):
        times = [_day(t) for t, _ in run.versions]
        ax.scatter(times, [row] * len(times), marker="|", s=300)
    ax.set_yticks(range(len(runs)), [r.name for r in runs])
    ax.set(title="model versions serving (a mark = a new version)")
    _time_axis(ax, runs)
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
