import json

from seqrec.pipeline.serving.source import ClickEvent
from seqrec.pipeline.serving.state import ANY_PARTITION, Seen, StateCache, UserHistory, apply_click, update_history

GAP = 30 * 60 * 1000


def c(item, ts, session=None, user="u"):
    return ClickEvent(f"e-{item}-{ts}", user, item, ts, session)


def test_keeps_the_last_n_items_and_writes_a_new_value_back():
    table = {}
    values = []
    for offset, item in enumerate(["a", "b", "c", "d"]):
        state, written = update_history(table, c(item, 1000 * offset), 0, offset, history_len=3, session_gap_ms=GAP)
        assert written == table[b"u"]  # what the changelog record will carry
        values.append(table[b"u"])
    assert UserHistory.from_bytes(table[b"u"]).items == ("b", "c", "d")
    assert state.items == ("b", "c", "d")
    assert UserHistory.from_bytes(values[0]).items == ("a",)  # earlier values left as written


def test_inactivity_gap_starts_a_new_session():
    s = apply_click(None, c("a", 0), 0, 0, history_len=10, session_gap_ms=GAP)
    s = apply_click(s, c("b", GAP), 0, 1, history_len=10, session_gap_ms=GAP)
    assert (s.session_index, s.session_len, s.session_id) == (1, 2, "u#1")
    s = apply_click(s, c("c", 2 * GAP + 1), 0, 2, history_len=10, session_gap_ms=GAP)
    assert (s.session_index, s.session_len, s.session_id, s.session_start) == (2, 1, "u#2", 2 * GAP + 1)
    assert s.items == ("a", "b", "c")  # the history spans sessions


def test_client_session_id_change_starts_a_session():
    s = apply_click(None, c("a", 0, "s1"), 0, 0, history_len=10, session_gap_ms=GAP)
    s = apply_click(s, c("b", 1, "s1"), 0, 1, history_len=10, session_gap_ms=GAP)
    assert (s.session_id, s.session_len) == ("s1", 2)
    s = apply_click(s, c("c", 2, "s2"), 0, 2, history_len=10, session_gap_ms=GAP)
    assert (s.session_id, s.session_index, s.session_len) == ("s2", 2, 1)


def test_out_of_order_click_never_moves_time_back():
    s = apply_click(None, c("a", 5000), 0, 0, history_len=10, session_gap_ms=GAP)
    s = apply_click(s, c("b", 1000), 0, 1, history_len=10, session_gap_ms=GAP)
    assert s.last_ts == 5000 and s.items == ("a", "b") and s.session_index == 1


def test_replayed_offset_is_not_applied_twice():
    table = {}
    update_history(table, c("a", 0), 0, 10, history_len=5, session_gap_ms=GAP)
    update_history(table, c("b", 1), 0, 11, history_len=5, session_gap_ms=GAP)
    state, written = update_history(table, c("a", 0), 0, 10, history_len=5, session_gap_ms=GAP)
    assert written is Seen.REPLAY and state.items == ("a", "b")
    assert UserHistory.from_bytes(table[b"u"]).items == ("a", "b")


def test_cache_serves_reads_and_is_dropped_on_a_new_generation():
    table, cache = {}, StateCache(max_users=2)
    cache.reset(1)
    update_history(table, c("a", 0), 0, 0, history_len=5, session_gap_ms=GAP, cache=cache)
    table[b"u"] = UserHistory(("stale",)).to_bytes()  # the cache wins within a generation
    state, _ = update_history(table, c("b", 1), 0, 1, history_len=5, session_gap_ms=GAP, cache=cache)
    assert state.items == ("a", "b")
    cache.reset(2)
    assert len(cache) == 0
    for user in ("x", "y", "z"):
        cache.put((0, user), UserHistory())
    assert len(cache) <= 2


def test_the_cache_keeps_each_partitions_value_apart():
    """The table has one value per user in each partition's database; a cached value of one
    partition must not stand in for another's (a keyless click once did, and the user's keyed
    clicks were then taken for replays)."""
    table3, table1, cache = {}, {}, StateCache()
    cache.reset(1)
    update_history(table3, c("a", 0), 3, 900, history_len=5, session_gap_ms=GAP, cache=cache)
    state, written = update_history(table1, c("b", 1), 1, 5, history_len=5, session_gap_ms=GAP, cache=cache)
    assert state.items == ("b",) and UserHistory.from_bytes(table1[b"u"]).items == ("b",)


def test_a_click_on_another_partition_is_never_taken_for_a_replay():
    """Offsets of two partitions are unrelated: clicks of one user that landed on partition 3
    (high offsets) must not make its later clicks on partition 1 (low offsets) look replayed."""
    s = None
    for offset, item in enumerate("abcdef"):
        s = apply_click(s, c(item, offset), 3, 500 + offset, history_len=20, session_gap_ms=GAP)
    for offset, item in enumerate("xyz"):
        s = apply_click(s, c(item, 10 + offset), 1, 7 + offset, history_len=20, session_gap_ms=GAP)
    assert s.items == tuple("abcdefxyz")
    assert apply_click(s, c("y", 11), 1, 8, history_len=20, session_gap_ms=GAP) is Seen.REPLAY
    assert apply_click(s, c("e", 4), 3, 504, history_len=20, session_gap_ms=GAP) is Seen.REPLAY


def test_a_duplicate_event_id_does_not_change_the_history():
    table = {}
    first, _ = update_history(table, c("a", 0), 0, 10, history_len=5, session_gap_ms=GAP)
    state, written = update_history(table, c("a", 0), 0, 11, history_len=5, session_gap_ms=GAP)
    assert written is Seen.DUPLICATE and state == first
    assert UserHistory.from_bytes(table[b"u"]).items == ("a",)


def test_event_ids_are_kept_in_a_bounded_window():
    s = None
    for offset in range(10):
        s = apply_click(s, c(f"i{offset}", offset), 0, offset, history_len=5, session_gap_ms=GAP, id_window=4)
    assert s.recent_ids == tuple(f"e-i{j}-{j}" for j in range(6, 10))
    assert apply_click(s, c("i9", 9), 0, 10, history_len=5, session_gap_ms=GAP, id_window=4) is Seen.DUPLICATE
    again = apply_click(s, c("i5", 5), 0, 11, history_len=5, session_gap_ms=GAP, id_window=4)
    assert again.items[-1] == "i5"  # older than the window: taken as a new click


def test_a_value_from_before_per_partition_offsets_still_guards_replays():
    old = {"items": ["a"], "last_ts": 0, "session_id": "u#1", "session_start": 0,
           "session_index": 1, "session_len": 1, "offset": 42}
    s = UserHistory.from_dict(old)
    assert s.offsets == {ANY_PARTITION: 42}
    assert apply_click(s, c("a", 0), 2, 42, history_len=5, session_gap_ms=GAP) is Seen.REPLAY
    new = apply_click(s, c("b", 1), 2, 43, history_len=5, session_gap_ms=GAP)
    assert new.offsets == {2: 43} and new.items == ("a", "b")


def test_round_trips():
    s = UserHistory(("a",), 1, "s", 1, 1, 1, {3: 7, 0: 2}, ("e1", "e2"))
    assert UserHistory.from_dict(s.to_dict()) == s == UserHistory.from_bytes(s.to_bytes())


# Values exactly as the worker wrote them with json.dumps(separators=(",", ":")), non-ASCII escaped.
OLD_VALUE = (b'{"items":["a","\\u00e9"],"last_ts":5,"session_id":"u#1","session_start":1,"session_index":1,'
             b'"session_len":2,"offsets":{"3":7,"0":2},"recent_ids":["e1","e2"]}')
OLD_SINGLE_OFFSET = (b'{"items":["a"],"last_ts":0,"session_id":"u#1","session_start":0,"session_index":1,'
                     b'"session_len":1,"offset":42}')


def test_values_written_by_the_json_worker_still_load():
    s = UserHistory.from_bytes(OLD_VALUE)
    assert s == UserHistory(("a", "\u00e9"), 5, "u#1", 1, 1, 2, {3: 7, 0: 2}, ("e1", "e2"))
    assert UserHistory.from_bytes(OLD_SINGLE_OFFSET).offsets == {ANY_PARTITION: 42}


def test_new_values_are_what_the_json_worker_wrote_and_read():
    s = UserHistory(("a", "é"), 5, "u#1", 1, 1, 2, {3: 7, 0: 2}, ("e1", "e2"))
    assert json.loads(s.to_bytes()) == json.loads(OLD_VALUE)  # a json reader (an older worker) reads it
    ascii_only = UserHistory(("a",), 0, "u#1", 0, 1, 1, {}, ())
    assert ascii_only.to_bytes() == json.dumps(ascii_only.to_dict(), separators=(",", ":")).encode()


def test_a_lone_surrogate_id_from_before_orjson_loads_and_is_written_again():
    # json accepted "\ud800" in a click's item_id and wrote it escaped; orjson refuses both ways.
    old = OLD_VALUE.replace(b"\\u00e9", b"\\ud800")
    state, written = update_history({b"u": old}, c("b", 10), 3, 8, history_len=5, session_gap_ms=GAP)
    assert state.items == ("a", "\ud800", "b")
    assert UserHistory.from_bytes(written) == state
