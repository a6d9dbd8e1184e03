"""Prequential (test-then-learn) evaluation of logged traffic (Vinagre, Jorge & Gama, 2014).

For each logged click, the list the system showed after the user's *previous* click is scored
against this click. The lists come from one of two places, and both are scored by
`score_shown_lists`, so the two paths cannot disagree about the metric:

- `simulate_serving`: in-process, the worker's own state update (`pipeline.serving.state`) and the
  model's batched inference, one list per click, without Kafka (fast);
- the recommendations topic of a real worker that the log was replayed into (`pipeline.evaluation.replay`),
  read back and keyed by the `event_id` of the click each list answers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from seqrec.model.metrics import catalogue_share, category_matrix, user_category_coverage, user_ranking_metrics
from seqrec.pipeline.settings import DEFAULT_HISTORY_LEN
from seqrec.pipeline.serving.source import ClickEvent
from seqrec.pipeline.serving.state import update_history

Recommend = Callable[[Sequence[Sequence[str]]], list[list[str]]]

_CATEGORY_BLOCK = 4096  # lists scored for category coverage at a time: bounded memory on long logs


@dataclass
class _Totals:
    """The 0-based rank of each scored click in its list, counted; the metrics are model.metrics'."""

    n: int = 0
    ranks: Counter[int] = field(default_factory=Counter)

    def add(self, rank: int) -> None:
        self.n += 1
        self.ranks[rank] += 1

    def metrics(self, ks: Sequence[int]) -> dict[str, float]:
        ranks = torch.tensor(list(self.ranks), dtype=torch.long)  # each distinct rank once
        clicks = torch.tensor(list(self.ranks.values()), dtype=torch.float64)  # (R,) clicks at each
        out: dict[str, float] = {"events": float(self.n)}
        for k in ks:
            for name, values in user_ranking_metrics(ranks, k).items():
                # The mean over clicks; with no scored click 0, not NaN.
                out[name] = float((values * clicks).sum()) / self.n if self.n else 0.0
        return out


class _CategoryCover:
    """The summed category coverage of the scored lists (model.metrics.user_category_coverage):
    each list's share of all the categories in `categories` (item id -> category ids)."""

    def __init__(self, categories: Mapping[str, Sequence[str]], width: int) -> None:
        self.index = {item: i for i, item in enumerate(categories, 1)}  # 0: padding, no category
        self.cats = category_matrix([frozenset(), *(frozenset(c) for c in categories.values())])
        self.width = width
        self.rows: list[list[int]] = []
        self.total = 0.0

    def add(self, listed: Sequence[str]) -> None:
        row = [self.index.get(item, 0) for item in listed]
        self.rows.append(row + [0] * (self.width - len(row)))
        if len(self.rows) >= _CATEGORY_BLOCK:
            self._flush()

    def mean(self, n: int) -> float:
        self._flush()
        return self.total / max(n, 1)

    def _flush(self) -> None:
        if self.rows:
            self.total += float(user_category_coverage(torch.tensor(self.rows, dtype=torch.long), self.cats).sum())
            self.rows.clear()


@dataclass
class PrequentialReport:
    overall: dict[str, float]
    windows: list[dict[str, Any]]  # per time window: start (ms) plus the metrics of `overall`
    scored: int  # clicks that had a list to score against
    first_clicks: int  # a user's first click: no list was shown before it
    unanswered: int  # clicks whose previous click got no list (lost or not yet produced)
    # user id -> that user's mean NDCG@max(ks) over their scored clicks: what a paired per-user
    # test between two runs on the same log needs (not in to_dict: one value per user)
    user_ndcg: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"overall": self.overall, "windows": self.windows, "scored": self.scored,
                "first_clicks": self.first_clicks, "unanswered": self.unanswered}


def fitting_window_ms(span_ms: int, windows: int = 20) -> int:
    """A round window length (1 s, 2 s, 5 s, 10 s, ... 1 min, 5 min, ... 1 day) that cuts a span
    of log time into about `windows` windows, so a plot over the span has points to show."""
    steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21_600, 43_200, 86_400]
    wanted = span_ms / 1000 / windows
    return 1000 * next((s for s in steps if s >= wanted), steps[-1])


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
    user_ranks: dict[str, list[int]] = {}
    category_cover = _CategoryCover(categories, top) if categories else None
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
        # 0-based; a click not in the list gets rank `top`, a miss at every cut-off.
        rank = listed.index(click.item_id) if click.item_id in listed else top
        total.add(rank)
        user_ranks.setdefault(click.user_id, []).append(rank)
        if window_ms:
            start = click.timestamp - click.timestamp % window_ms
            per_window.setdefault(start, _Totals()).add(rank)
        recommended.update(listed)
        if category_cover is not None:
            category_cover.add(listed)
    overall = total.metrics(ks)
    n_catalogue = catalogue_size or len({c.item_id for c in clicks})
    overall[f"coverage@{top}"] = catalogue_share(len(recommended), n_catalogue)
    if category_cover is not None:
        overall[f"CC@{top}"] = category_cover.mean(total.n)
    windows = [{"start_ms": start, **t.metrics(ks)} for start, t in sorted(per_window.items())]
    ndcg = f"NDCG@{top}"
    user_ndcg = {user: float(user_ranking_metrics(torch.tensor(ranks), top)[ndcg].mean())
                 for user, ranks in user_ranks.items()}
    return PrequentialReport(overall, windows, total.n, first, unanswered, user_ndcg)


def simulate_serving(
    clicks: Sequence[ClickEvent],
    recommend: Recommend,
    *,
    history_len: int = DEFAULT_HISTORY_LEN,
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
