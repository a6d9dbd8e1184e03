"""State: each user's last N items and current session, kept in a Faust table (RocksDB, backed
by a compacted changelog topic) keyed by user id.

The table value is a plain JSON dict (`UserHistory.to_dict()`), and every update writes a *new*
value back (`table[user] = ...`): Faust publishes a change to the changelog only on assignment,
so a list changed in place would be lost at the next recovery.

A click must not enter the history twice. Two guards, each for its own cause:
- replay after a crash or a rebalance (at-least-once): the value keeps, per source partition,
  the offset of the last click applied there, and a click at or below it is not applied again.
  Per partition, because offsets of different partitions are unrelated: a user's clicks that
  arrived on two partitions (a producer with another partitioner, a topic that grew) must not
  make one partition's clicks look like replays of the other's.
- a duplicate `event_id` (a producer's retry, a client re-sending), which arrives at a new
  offset: the value keeps the user's last `id_window` event ids.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, Mapping

import orjson

from seqrec.pipeline.serving.internals import FAUST_OFFSET_KEY
from seqrec.pipeline.serving.source import ClickEvent


@dataclass(frozen=True, slots=True)
class UserHistory:
    items: tuple[str, ...] = ()  # the last N item ids, oldest first
    last_ts: int = 0  # newest event time seen (ms)
    session_id: str = ""  # the client's session id, or "<user>#<n>" when it sends none
    session_start: int = 0  # event time of the current session's first click (ms)
    session_index: int = 0  # sessions so far, counting from 1
    session_len: int = 0  # clicks in the current session
    # source partition → offset of the last click applied there (replay guard)
    offsets: Mapping[int, int] = field(default_factory=dict)
    recent_ids: tuple[str, ...] = ()  # the last event ids applied, oldest first (duplicate guard)

    def to_dict(self) -> dict[str, Any]:
        """The value's JSON object; the arrays are the tuples themselves (no copy: both json and
        orjson write a tuple as an array)."""
        return {
            "items": self.items,
            "last_ts": self.last_ts,
            "session_id": self.session_id,
            "session_start": self.session_start,
            "session_index": self.session_index,
            "session_len": self.session_len,
            "offsets": {str(p): o for p, o in self.offsets.items()},
            "recent_ids": self.recent_ids,
        }

    def to_bytes(self) -> bytes:
        data = self.to_dict()
        try:
            return orjson.dumps(data)
        except orjson.JSONEncodeError:  # a lone surrogate in an id (see from_bytes)
            return json.dumps(data, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> "UserHistory":
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            # Before clicks were parsed with orjson, an id could hold a lone surrogate ("\ud800"
            # is valid to json, not to orjson); such a value was written escaped and must load.
            data = json.loads(raw)
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "UserHistory":
        return cls(
            items=tuple(data["items"]),
            last_ts=data["last_ts"],
            session_id=data["session_id"],
            session_start=data["session_start"],
            session_index=data["session_index"],
            session_len=data["session_len"],
            offsets=_offsets_from(data),
            recent_ids=tuple(data.get("recent_ids", ())),
        )


def _offsets_from(data: dict[str, Any]) -> dict[int, int]:
    if "offsets" in data:
        return {int(p): o for p, o in data["offsets"].items()}
    # Written before the guard was per partition: one offset, of the user's only partition.
    return {ANY_PARTITION: data["offset"]} if data.get("offset", -1) >= 0 else {}


ANY_PARTITION = -1  # an offset whose partition is not known (values from older workers)
# Event ids kept per user: a producer's retry or a client's re-send comes within a few clicks;
# each id costs its length in every changelog record of the user.
ID_WINDOW = 32


class Seen(Enum):
    """Why a click leaves the history as it is."""

    REPLAY = "replay"  # its offset was applied before (redelivery after a crash or rebalance)
    DUPLICATE = "duplicate"  # a new message with an event_id the user's state has seen


def seen_before(state: UserHistory, click: ClickEvent, partition: int, offset: int) -> Seen | None:
    """Whether `click` (at `partition`, `offset`) is already in `state`."""
    last = state.offsets.get(partition, state.offsets.get(ANY_PARTITION, -1))
    if offset <= last:
        return Seen.REPLAY
    if click.event_id in state.recent_ids:
        return Seen.DUPLICATE
    return None


def apply_click(
    state: UserHistory | None,
    click: ClickEvent,
    partition: int,
    offset: int,
    *,
    history_len: int,
    session_gap_ms: int,
    id_window: int = ID_WINDOW,
) -> UserHistory | Seen:
    """The user's state after `click` (at source `partition`, `offset`), or why it is not applied.

    A new session starts with the user's first click, when the client's session id changes, or
    after `session_gap_ms` without clicks. Out-of-order clicks are appended in arrival order
    and never move `last_ts` backwards. The state keeps the last `id_window` event ids.
    """
    if state is not None:
        seen = seen_before(state, click, partition, offset)
        if seen is not None:
            return seen
    if state is None:
        state = UserHistory()
        new_session = True
    elif click.session_id is not None and click.session_id != state.session_id:
        new_session = True
    else:
        new_session = click.timestamp - state.last_ts > session_gap_ms
    items = (state.items + (click.item_id,))[-history_len:]
    offsets = {p: o for p, o in state.offsets.items() if p != ANY_PARTITION}
    offsets[partition] = offset
    recent_ids = (state.recent_ids + (click.event_id,))[-id_window:] if id_window > 0 else ()
    if new_session:
        index = state.session_index + 1
        session_id, session_start, session_len = click.session_id or f"{click.user_id}#{index}", click.timestamp, 1
    else:
        index, session_id = state.session_index, state.session_id
        session_start, session_len = state.session_start, state.session_len + 1
    return UserHistory(
        items=items,
        last_ts=max(state.last_ts, click.timestamp),
        session_id=session_id,
        session_start=session_start,
        session_index=index,
        session_len=session_len,
        offsets=offsets,
        recent_ids=recent_ids,
    )


def update_history(
    table: MutableMapping[bytes, bytes],
    click: ClickEvent,
    partition: int,
    offset: int,
    *,
    history_len: int,
    session_gap_ms: int,
    id_window: int = ID_WINDOW,
    cache: StateCache | None = None,
) -> tuple[UserHistory, bytes | Seen]:
    """Apply `click` to `table[user]`, write the new value back; return (state, value written),
    or (the current state, why not) when the click is already in the history.

    Keys and values are bytes (`user_id` UTF-8, `UserHistory.to_bytes()`).

    `table` is the Faust table's store inside the worker (or a dict in tests). A replayed or
    duplicate click leaves the table untouched. With a `cache`, reads come from it when it has
    the user (a RocksDB read through Faust costs ~0.2 ms).
    """
    user = click.user_id
    key = user.encode("utf-8")
    slot = (partition, user)  # the table holds one value per user in each partition's database
    state = cache.get(slot) if cache is not None else None
    if state is None:
        raw = table.get(key)
        state = UserHistory.from_bytes(raw) if raw is not None else None
    new = apply_click(state, click, partition, offset, history_len=history_len,
                      session_gap_ms=session_gap_ms, id_window=id_window)
    if isinstance(new, Seen):
        return state if state is not None else UserHistory(), new
    value = new.to_bytes()
    table[key] = value
    if cache is not None:
        cache.put(slot, new)
    return new, value


class StateCache:
    """Recently written user states, by (partition, user) as the table's databases hold them;
    valid while the worker keeps its partitions.

    Only the owner of a partition writes its users' values, so between two rebalances the
    cache cannot go stale; `reset(generation)` drops everything when the consumer generation
    changes. Bounded: when full it is emptied (cheap, and the table still has everything).
    """

    def __init__(self, max_users: int = 100_000) -> None:
        self.max_users = max_users
        self.generation: int | None = None
        self._states: dict[tuple[int, str], UserHistory] = {}

    def reset(self, generation: int) -> None:
        if generation != self.generation:
            self._states.clear()
            self.generation = generation

    def get(self, slot: tuple[int, str]) -> UserHistory | None:
        return self._states.get(slot)

    def put(self, slot: tuple[int, str], state: UserHistory) -> None:
        if len(self._states) >= self.max_users and slot not in self._states:
            self._states.clear()
        self._states[slot] = state

    def __len__(self) -> int:
        return len(self._states)


def decode_table_key(key: bytes) -> str:
    """A user id as the table and its changelog hold it."""
    return key.decode("utf-8")


def _partition_databases(datadir: Path, table_name: str) -> Iterator[tuple[int, Any]]:
    """(partition, read-only rocksdict handle) for each `<table>-<partition>.db` under `datadir`."""
    from rocksdict import AccessType, Options, Rdict

    for path in sorted(Path(datadir).rglob(f"{table_name}-*.db")):
        partition = int(path.name[len(table_name) + 1 : -len(".db")])
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only(False))
        try:
            yield partition, db
        finally:
            db.close()


def iter_rocksdb_table(datadir: Path, table_name: str) -> Iterator[tuple[int, str, UserHistory]]:
    """(partition, user, state) for every user in a stopped worker's RocksDB table files.

    Debugging and tests only: opens each `<table>-<partition>.db` under `datadir` read-only.
    Standby copies of other workers' partitions are included when the worker kept any.
    """
    for partition, db in _partition_databases(datadir, table_name):
        for key, value in db.items():
            if key != FAUST_OFFSET_KEY:
                yield partition, decode_table_key(key), UserHistory.from_bytes(value)


def persisted_changelog_offsets(datadir: Path, table_name: str) -> dict[int, int]:
    """Partition → the changelog offset its RocksDB file says it holds data up to (what Faust's
    recovery resumes after), for a stopped worker. Partitions without one are left out."""
    offsets = {}
    for partition, db in _partition_databases(datadir, table_name):
        raw = db.get(FAUST_OFFSET_KEY)
        if raw is not None:
            offsets[partition] = int(raw)
    return offsets


__all__ = [
    "ANY_PARTITION",
    "ID_WINDOW",
    "Seen",
    "StateCache",
    "UserHistory",
    "apply_click",
    "decode_table_key",
    "iter_rocksdb_table",
    "persisted_changelog_offsets",
    "seen_before",
    "update_history",
]
