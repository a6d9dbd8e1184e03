from pipeline.source import ClickEvent
from pipeline.state import StateCache, UserHistory, apply_click, update_history

GAP = 30 * 60 * 1000


def c(item, ts, session=None, user="u"):
    return ClickEvent(f"e-{item}-{ts}", user, item, ts, session)


def test_keeps_the_last_n_items_and_writes_a_new_value_back():
    table = {}
    values = []
    for offset, item in enumerate(["a", "b", "c", "d"]):
        state, written = update_history(table, c(item, 1000 * offset), offset, history_len=3, session_gap_ms=GAP)
        assert written == table[b"u"]  # what the changelog record will carry
        values.append(table[b"u"])
    assert UserHistory.from_bytes(table[b"u"]).items == ("b", "c", "d")
    assert state.items == ("b", "c", "d")
    assert UserHistory.from_bytes(values[0]).items == ("a",)  # earlier values left as written


def test_inactivity_gap_starts_a_new_session():
    s = apply_click(None, c("a", 0), 0, history_len=10, session_gap_ms=GAP)
    s = apply_click(s, c("b", GAP), 1, history_len=10, session_gap_ms=GAP)
    assert (s.session_index, s.session_len, s.session_id) == (1, 2, "u#1")
    s = apply_click(s, c("c", 2 * GAP + 1), 2, history_len=10, session_gap_ms=GAP)
    assert (s.session_index, s.session_len, s.session_id, s.session_start) == (2, 1, "u#2", 2 * GAP + 1)
    assert s.items == ("a", "b", "c")  # the history spans sessions


def test_client_session_id_change_starts_a_session():
    s = apply_click(None, c("a", 0, "s1"), 0, history_len=10, session_gap_ms=GAP)
    s = apply_click(s, c("b", 1, "s1"), 1, history_len=10, session_gap_ms=GAP)
    assert (s.session_id, s.session_len) == ("s1", 2)
    s = apply_click(s, c("c", 2, "s2"), 2, history_len=10, session_gap_ms=GAP)
    assert (s.session_id, s.session_index, s.session_len) == ("s2", 2, 1)


def test_out_of_order_click_never_moves_time_back():
    s = apply_click(None, c("a", 5000), 0, history_len=10, session_gap_ms=GAP)
    s = apply_click(s, c("b", 1000), 1, history_len=10, session_gap_ms=GAP)
    assert s.last_ts == 5000 and s.items == ("a", "b") and s.session_index == 1


def test_replayed_offset_is_not_applied_twice():
    table = {}
    update_history(table, c("a", 0), 10, history_len=5, session_gap_ms=GAP)
    update_history(table, c("b", 1), 11, history_len=5, session_gap_ms=GAP)
    state, written = update_history(table, c("a", 0), 10, history_len=5, session_gap_ms=GAP)
    assert written is None and state.items == ("a", "b")
    assert UserHistory.from_bytes(table[b"u"]).items == ("a", "b")


def test_cache_serves_reads_and_is_dropped_on_a_new_generation():
    table, cache = {}, StateCache(max_users=2)
    cache.reset(1)
    update_history(table, c("a", 0), 0, history_len=5, session_gap_ms=GAP, cache=cache)
    table[b"u"] = UserHistory(("stale",)).to_bytes()  # the cache wins within a generation
    state, _ = update_history(table, c("b", 1), 1, history_len=5, session_gap_ms=GAP, cache=cache)
    assert state.items == ("a", "b")
    cache.reset(2)
    assert len(cache) == 0
    for user in ("x", "y", "z"):
        cache.put(user, UserHistory())
    assert len(cache) <= 2


def test_round_trips():
    s = UserHistory(("a",), 1, "s", 1, 1, 1, 7)
    assert UserHistory.from_dict(s.to_dict()) == s == UserHistory.from_bytes(s.to_bytes())
