"""Loaders for every format, format detection, the id map, the split and the synthetic generator."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from seqrec.model.data import (
    ItemMap,
    detect_format,
    leave_one_out,
    load_dataset,
    load_timed_clicks,
    pad_left,
    sequences_from_clicks,
    synthetic_clicks,
    synthetic_dataset,
)
from seqrec.model.errors import DataError


def test_item_map_round_trip_and_grow() -> None:
    m = ItemMap.from_items(["10", "2", "b", "a", "2"])
    assert m.to_list() == ["2", "10", "a", "b"]  # numeric ids in numeric order, then the rest
    assert m.index("10") == 2 and m.raw(2) == "10" and m.index("zz") is None
    assert m.encode(["a", "zz", "2"]) == [3, 1]
    assert m.grow(["b", "c", "d", "c"]) == 2
    assert m.index("c") == 5 and m.index("2") == 1  # old indices never move
    assert ItemMap.from_list(m.to_list()) == m
    with pytest.raises(ValueError):
        ItemMap.from_list(["1", "1"])
    with pytest.raises(IndexError):
        m.raw(0)


def test_sasrec_pairs_gzip(tmp_path: Path) -> None:
    path = tmp_path / "d.txt.gz"
    with gzip.open(path, "wt") as f:
        f.write("1 5\n1 3\n2 4\n1 9\n2 5\n")
    assert detect_format(path) == "sasrec"
    ds = load_dataset(path)
    assert ds.users == ["1", "2"] and ds.sequences == [["5", "3", "9"], ["4", "5"]]


def test_s3rec_lines_with_attributes(tmp_path: Path) -> None:
    path = tmp_path / "Shop.txt"
    path.write_text("1 1 2 3\n2 2 3 4 5\n")
    (tmp_path / "Shop_item2attributes.json").write_text(json.dumps({"1": [7], "2": [7, 8]}))
    assert detect_format(path) == "s3rec"
    ds = load_dataset(path)
    assert ds.sequences == [["1", "2", "3"], ["2", "3", "4", "5"]]
    assert ds.item_attributes == {"1": ["7"], "2": ["7", "8"]}


def test_recbole_inter_sorted_by_time_with_genres(tmp_path: Path) -> None:
    path = tmp_path / "m.inter"
    path.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                    "1\t10\t3\t300\n1\t11\t4\t100\n2\t10\t5\t50\n")
    (tmp_path / "m.item").write_text("item_id:token\tmovie_title:token_seq\tclass:token_seq\n"
                                     "10\tA\tComedy Drama\n11\tB\tHorror\n")
    ds = load_dataset(path)
    assert ds.sequences == [["11", "10"], ["10"]]
    assert ds.item_attributes == {"10": ["Comedy", "Drama"], "11": ["Horror"]}


def test_csv_log_sorted_by_time(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\nu1,a,2.0\nu1,b,1.0\nu2,a,5\n")
    ds = load_dataset(path)
    assert ds.users == ["u1", "u2"] and ds.sequences == [["b", "a"], ["a"]]
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item\n1,2\n")
    with pytest.raises(DataError, match="timestamp"):
        load_dataset(bad)


@pytest.mark.parametrize("clock", ["seconds", "timestamp type"])
def test_parquet_log_sorted_by_time(tmp_path: Path, clock: str) -> None:
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    seconds = [2.0, 1.0, 5.0]
    stamps = (pa.array(seconds) if clock == "seconds" else
              pa.array([datetime.datetime.fromtimestamp(t, datetime.timezone.utc) for t in seconds],
                       pa.timestamp("ms", tz="UTC")))
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user_id": ["u1", "u1", "u2"], "item_id": [10, 11, 10], "timestamp": stamps}), path)
    ds = load_dataset(path)
    assert ds.users == ["u1", "u2"] and ds.sequences == [["11", "10"], ["10"]]
    assert load_timed_clicks(path) == [("u1", "11", 1.0), ("u1", "10", 2.0), ("u2", "10", 5.0)]
    pq.write_table(pa.table({"user_id": ["u1"], "item": ["a"]}), path)
    with pytest.raises(DataError, match="item_id, timestamp"):
        load_dataset(path)
    path.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot read Parquet"):
        load_dataset(path)


def test_format_override_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "pairs.txt"
    path.write_text("1 2 3\n")
    with pytest.raises(DataError, match=r"pairs.txt:1"):
        load_dataset(path, "sasrec")
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="unknown dataset format"):
        load_dataset(path, "xml")


def test_leave_one_out_and_padding() -> None:
    ds = sequences_from_clicks([("u", "1", 1), ("u", "2", 2), ("u", "3", 3), ("u", "4", 4), ("v", "1", 1), ("v", "2", 2)])
    m = ItemMap.from_items(ds.item_ids())
    split = leave_one_out(ds, m)
    assert split.train == [[1, 2], [1, 2]] and split.valid_target == [3, 0] and split.test_target == [4, 0]
    assert split.eval_inputs("valid") == ([[1, 2]], [3])
    assert split.eval_inputs("test") == ([[1, 2, 3]], [4])
    assert pad_left([[1, 2, 3], [4]], 2).tolist() == [[2, 3], [0, 4]]


def test_synthetic_clicks_are_seeded_sorted_and_skewed() -> None:
    a = synthetic_clicks(50, 40, seed=3)
    assert a == synthetic_clicks(50, 40, seed=3)
    assert a != synthetic_clicks(50, 40, seed=4)
    assert [t for _, _, t in a] == sorted(t for _, _, t in a)
    counts: dict[str, int] = {}
    for _, item, _ in a:
        counts[item] = counts.get(item, 0) + 1
    top = sorted(counts.values(), reverse=True)
    assert top[0] > 2 * top[len(top) // 2]  # popularity skew
    ds = synthetic_dataset(50, 40, seed=3)
    assert len(ds.users) == 50 and set(ds.item_attributes) >= ds.item_ids()
