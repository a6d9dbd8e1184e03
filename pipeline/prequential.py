"""Prequential (test-then-learn) evaluation of logged traffic (Vinagre, Jorge & Gama, 2014).

For each logged click, the list the system showed after the user's *previous* click is scored
against this click. The lists come from one of two places, and both are scored by
`score_shown_lists`, so the two paths cannot disagree about the metric:

- `simulate_serving`: in-process, the worker's own state update (`pipeline.state`) and the
  model's batched inference, one list per click, without Kafka (fast);
- the recommendations topic of a real worker that the log was replayed into (`pipeline.replay`),
  read back and keyed by the `event_id` of the click each list answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from pipeline.source import ClickEvent
from pipeline.state import update_history

Recommend = Callable[[Sequence[Sequence[str]]], list[list[str]]]


@dataclass
class _Totals:
    n: int = 0
    hits: dict[int, float] = field(default_factory=dict)
    ndcg: dict[int, float] = field(default_factory=dict)
    mrr: dict[int, float] = field(default_factory=dict)

    def add(self, rank: int | None, ks: Sequence[int]) -> None:
        self.n += 1
        for k in ks:
            hit = rank is not None and rank <= k
            self.hits[k] = self.hits.get(k, 0.0) + hit
            self.ndcg[k] = self.ndcg.get(k, 0.0) + (1 / math.log2(rank + 1) if hit else 0.0)
            self.mrr[k] = self.mrr.get(k, 0.0) + (1 / rank if hit else 0.0)

    def metrics(self, ks: Sequence[int]) -> dict[str, float]:
        out: dict[str, float] = {"events": float(self.n)}
        for k in ks:
            d = max(self.n, 1)
            out.update({f"HR@{k}": self.hits.get(k, 0.0) / d, f"NDCG@{k}": self.ndcg.get(k, 0.0) / d,
                        f"MRR@{k}": self.mrr.get(k, 0.0) / d})
        return out


@dataclass
class PrequentialReport:
    overall: dict[str, float]
    windows: list[dict[str, Any]]  # per time window: start (ms) plus the metrics of `overall`
    scored: int  # clicks that had a list to score against
    first_clicks: int  # a user's first click: no list was shown before it
    unanswered: int  # clicks whose previous click got no list (lost or not yet produced)

    def to_dict(self) -> dict[str, Any]:
        return {"overall": self.overall, "windows": self.windows, "scored": self.scored,
                "first_clicks": self.first_clicks, "unanswered": self.unanswered}


def score_shown_lists(
    clicks: Sequence[ClickEvent],
    shown: Mapping[str, Sequence[str]],
    *,
    ks: Sequence[int] = (5, 10),
    window_ms: int | None = None,
    catalogue_size: int | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
    score_from: int = 0,
) -> PrequentialReport:
    """Score each click against the list shown after the same user's previous click.

    clicks: the log in time order. shown: event_id -> recommended item ids, best first.
    Clicks before index `score_from` only set each user's previous click (a holdout's past).
    Catalogue coverage is the share of `catalogue_size` items (default: distinct items in the
    log) that appear in any scored list's top max(ks); category coverage (with `categories`,
    item id -> category ids) is the mean share of all categories one list covers."""
    ks = sorted(ks)
    top = ks[-1]
    previous: dict[str, str] = {}
    total, per_window = _Totals(), {}
    first = unanswered = 0
    recommended: set[str] = set()
    all_categories = {c for cats in (categories or {}).values() for c in cats}
    category_cover = 0.0
    for index, click in enumerate(clicks):
        prev = previous.get(click.user_id)
        previous[click.user_id] = click.event_id
        if index < score_from:
            continue
        if prev is None:
            first += 1
            continue
        listed = shown.get(prev)
        if listed is None:
            unanswered += 1
            continue
        listed = list(listed[:top])
        rank = listed.index(click.item_id) + 1 if click.item_id in listed else None
        total.add(rank, ks)
        if window_ms:
            start = click.timestamp - click.timestamp % window_ms
            per_window.setdefault(start, _Totals()).add(rank, ks)
        recommended.update(listed)
        if categories and all_categories:
            covered = {c for item in listed for c in categories.get(item, ())}
            category_cover += len(covered) / len(all_categories)
    overall = total.metrics(ks)
    n_catalogue = catalogue_size or len({c.item_id for c in clicks})
    overall[f"coverage@{top}"] = len(recommended) / max(n_catalogue, 1)
    if categories:
        overall[f"CC@{top}"] = category_cover / max(total.n, 1)
    windows = [{"start_ms": start, **t.metrics(ks)} for start, t in sorted(per_window.items())]
    return PrequentialReport(overall, windows, total.n, first, unanswered)


def simulate_serving(
    clicks: Sequence[ClickEvent],
    recommend: Recommend,
    *,
    history_len: int = 50,
    session_gap_ms: int = 1_800_000,
    batch_size: int = 256,
    answer_from: int = 0,
    users_after: Collection[str] | None = None,
    table: dict[str, Any] | None = None,
    first_offset: int = 0,
    progress: bool = False,
) -> dict[str, list[str]]:
    """The list the worker would produce for clicks: its state update, then batched inference.

    `recommend(histories) -> item id lists`. Clicks before `answer_from` only update the state,
    except each user's last one before it when the user clicks again later (its list is what
    that later click is scored against); `users_after` names those users when the later clicks
    are not all in `clicks` (default: the users of `clicks[answer_from:]`). `table` carries the users' state across calls (a
    retraining simulation runs one call per model), with `first_offset` the index of
    `clicks[0]` in the whole log."""
    table = {} if table is None else table
    later_users = set(users_after) if users_after is not None else {c.user_id for c in clicks[answer_from:]}
    last_before = {c.user_id: i for i, c in enumerate(clicks[:answer_from])}
    answer_early = {i for user, i in last_before.items() if user in later_users}
    shown: dict[str, list[str]] = {}
    pending: list[tuple[str, tuple[str, ...]]] = []

    def flush() -> None:
        for (event_id, _), items in zip(pending, recommend([h for _, h in pending])):
            shown[event_id] = items
        pending.clear()

    for index, click in enumerate(tqdm(clicks, desc="simulate", unit="click", disable=not progress, mininterval=1.0)):
        state, _ = update_history(table, click, 0, first_offset + index, history_len=history_len,
                                  session_gap_ms=session_gap_ms)
        if index >= answer_from or index in answer_early:
            pending.append((click.event_id, state.items))
            if len(pending) >= batch_size:
                flush()
    if pending:
        flush()
    return shown
