"""Datasets for next-item models: loaders, the raw-id <-> index mapping, the leave-one-out split, padded
batches and a synthetic click generator.

Formats (see ../shared/data/README.md), picked from the path unless `fmt` names one:
- ``sasrec``: ``user item`` per line, chronological per user (ml-1m.txt[.gz]).
- ``s3rec``: ``user item item ...`` one user per line, chronological (Beauty.txt); attributes from the
  sibling ``<stem>_item2attributes.json`` when present.
- ``recbole``: atomic ``.inter`` TSV with a typed header (``user_id:token item_id:token ... timestamp:float``),
  ordered by timestamp; genres from the sibling ``.item`` file's ``class`` column.
- ``csv``: a log with header ``user_id,item_id,timestamp`` (what the pipeline writes), ordered by timestamp.
Parquet is not supported (no pyarrow in the dependencies); convert to CSV.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

from seqrec.model.errors import DataError

__all__ = [
    "FORMATS",
    "ItemMap",
    "SequenceDataset",
    "Split",
    "detect_format",
    "leave_one_out",
    "load_dataset",
    "pad_left",
    "item_categories",
    "sequences_from_clicks",
    "synthetic_categories",
    "synthetic_clicks",
    "synthetic_dataset",
]

log = logging.getLogger(__name__)

FORMATS = ("sasrec", "s3rec", "recbole", "csv", "parquet")
TIMED_FORMATS = ("recbole", "csv", "parquet")  # formats with a clock: time-ordered replay works on them


# ---- id mapping ----------------------------------------------------------------------------------


def _id_sort_key(raw: str) -> tuple[int, int, str]:
    # Numeric ids in numeric order (so the SASRec/S3Rec files keep index == raw id), others after.
    return (0, int(raw), "") if raw.isdigit() else (1, 0, raw)


class ItemMap:
    """Raw item id (str) <-> contiguous index 1..n; index 0 is padding. Travels inside checkpoints as a
    plain list (position i holds the raw id of index i + 1)."""

    def __init__(self, raw_ids: Iterable[str] = ()) -> None:
        self._raw: list[str] = []
        self._index: dict[str, int] = {}
        self.grow(raw_ids)

    @classmethod
    def from_items(cls, raw_ids: Iterable[str]) -> "ItemMap":
        """A map over the distinct ids, numeric ids in numeric order, then the others sorted."""
        return cls(sorted(set(raw_ids), key=_id_sort_key))

    def grow(self, new_raw_ids: Iterable[str]) -> int:
        """Append ids not yet known (in the order given) after the existing ones; existing indices never
        move, so a model can be warm-started on the grown catalogue. Returns how many were added."""
        added = 0
        for raw in new_raw_ids:
            raw = str(raw)
            if raw not in self._index:
                self._raw.append(raw)
                self._index[raw] = len(self._raw)
                added += 1
        return added

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, raw: object) -> bool:
        return raw in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ItemMap) and self._raw == other._raw

    def index(self, raw: str) -> int | None:
        return self._index.get(raw)

    def raw(self, index: int) -> str:
        if not 1 <= index <= len(self._raw):
            raise IndexError(f"item index {index} outside 1..{len(self._raw)}")
        return self._raw[index - 1]

    def encode(self, raw_ids: Iterable[str]) -> list[int]:
        """Indices of the known ids, unknown ones skipped."""
        get = self._index.get
        return [i for i in (get(r) for r in raw_ids) if i is not None]

    def to_list(self) -> list[str]:
        return list(self._raw)

    @classmethod
    def from_list(cls, raw_ids: Sequence[str]) -> "ItemMap":
        if len(set(raw_ids)) != len(raw_ids):
            raise ValueError("item id list holds duplicates")
        return cls(raw_ids)


# ---- datasets ------------------------------------------------------------------------------------


@dataclass
class SequenceDataset:
    """Chronological item sequences per user, in raw ids, plus optional item attributes."""

    name: str
    users: list[str]
    sequences: list[list[str]]  # sequences[u] is users[u]'s history, oldest first
    item_attributes: dict[str, list[str]] | None = None  # raw item id -> attribute/category ids
    source: str = ""  # the file it was read from, for error messages

    @property
    def where(self) -> str:
        return self.source or self.name

    @property
    def n_interactions(self) -> int:
        return sum(len(s) for s in self.sequences)

    def item_ids(self) -> set[str]:
        return {i for s in self.sequences for i in s}

    def fingerprint(self) -> str:
        """sha256 over users and their sequences: identifies the exact training data."""
        h = hashlib.sha256()
        for user, seq in zip(self.users, self.sequences):
            h.update(user.encode())
            h.update(b"\t")
            h.update(" ".join(seq).encode())
            h.update(b"\n")
        return h.hexdigest()[:16]


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def detect_format(path: str | Path) -> str:
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".inter"):
        return "recbole"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    # Text: `user item` pairs (sasrec) or one user per line (s3rec). Look at the first lines.
    with _open_text(path) as f:
        head = [line.split() for _, line in zip(range(200), f) if line.strip()]
    if not head:
        raise DataError(f"{path}: file is empty")
    users = [row[0] for row in head]
    if all(len(row) == 2 for row in head) and len(set(users)) < len(users):
        return "sasrec"
    return "s3rec"


def _sequences_from_pairs(pairs: Iterable[tuple[str, str]]) -> tuple[list[str], list[list[str]]]:
    by_user: dict[str, list[str]] = {}
    for user, item in pairs:
        by_user.setdefault(user, []).append(item)
    users = sorted(by_user, key=_id_sort_key)
    return users, [by_user[u] for u in users]


def _integer_ids(path: Path, n: int, line: str, parts: list[str]) -> list[str]:
    """The SASRec and S3Rec text formats hold integer ids only; anything else is a broken file."""
    if not all(p.isdigit() for p in parts):
        raise DataError(f"{path}:{n}: ids must be integers in this format, got {line.strip()[:80]!r}")
    return parts


def _read_sasrec(path: Path) -> tuple[list[str], list[list[str]]]:
    def pairs() -> Iterator[tuple[str, str]]:
        with _open_text(path) as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2:
                    raise DataError(f"{path}:{n}: expected `user item`, got {line.strip()[:80]!r}")
                user, item = _integer_ids(path, n, line, parts)
                yield user, item

    return _sequences_from_pairs(pairs())


def _read_s3rec(path: Path) -> tuple[list[str], list[list[str]]]:
    users, seqs = [], []
    with _open_text(path) as f:
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise DataError(f"{path}:{n}: expected `user item item ...`, got {line.strip()[:80]!r}")
            user, *items = _integer_ids(path, n, line, parts)
            users.append(user)
            seqs.append(items)
    return users, seqs


def _timed_sequences(rows: Iterable[tuple[str, str, float]]) -> tuple[list[str], list[list[str]]]:
    by_user: dict[str, list[tuple[float, int, str]]] = {}
    for n, (user, item, ts) in enumerate(rows):
        by_user.setdefault(user, []).append((ts, n, item))  # n keeps file order among equal stamps
    users = sorted(by_user, key=_id_sort_key)
    return users, [[item for _, _, item in sorted(by_user[u])] for u in users]


def _recbole_rows(path: Path) -> Iterator[tuple[str, str, float]]:
    """(user, item, timestamp) of a RecBole `.inter` file, in file order (timestamp 0 if absent)."""
    with _open_text(path) as f:
        header = [h.split(":")[0] for h in f.readline().rstrip("\n").split("\t")]
        try:
            iu, ii = header.index("user_id"), header.index("item_id")
        except ValueError:
            raise DataError(f"{path}: header needs user_id and item_id columns, got {header}") from None
        it = header.index("timestamp") if "timestamp" in header else None
        for n, line in enumerate(f, 2):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != len(header):
                if not line.strip():
                    continue
                raise DataError(f"{path}:{n}: expected {len(header)} tab-separated fields")
            yield parts[iu], parts[ii], float(parts[it]) if it is not None else 0.0


def _read_recbole(path: Path) -> tuple[list[str], list[list[str]], dict[str, list[str]] | None]:
    users, seqs = _timed_sequences(_recbole_rows(path))
    item_file = path.with_suffix(".item")
    attrs = None
    if item_file.exists():
        with _open_text(item_file) as f:
            header = [h.split(":")[0] for h in f.readline().rstrip("\n").split("\t")]
            if "class" in header and "item_id" in header:
                ic, ii = header.index("class"), header.index("item_id")
                attrs = {}
                for line in f:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) == len(header):
                        attrs[parts[ii]] = parts[ic].split()
    return users, seqs, attrs


def _csv_rows(path: Path) -> Iterator[tuple[str, str, float]]:
    """(user, item, timestamp) of a `user_id,item_id,timestamp` CSV log, in file order."""
    with _open_text(path) as f:
        reader = csv.DictReader(f)
        missing = {"user_id", "item_id", "timestamp"} - set(reader.fieldnames or ())
        if missing:
            raise DataError(f"{path}: CSV header lacks {', '.join(sorted(missing))} (need user_id,item_id,timestamp)")
        for n, row in enumerate(reader, 2):
            try:
                yield row["user_id"], row["item_id"], float(row["timestamp"])
            except (TypeError, ValueError):
                raise DataError(f"{path}:{n}: bad row {row}") from None


def _parquet_rows(path: Path) -> Iterator[tuple[str, str, float]]:
    """(user, item, timestamp in seconds) of a Parquet log with columns user_id, item_id, timestamp
    (numbers, or a timestamp type), in file order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        missing = {"user_id", "item_id", "timestamp"} - set(names)
        if missing:
            raise DataError(f"{path}: Parquet columns lack {', '.join(sorted(missing))} (need user_id,item_id,timestamp)")
        table = pq.read_table(path, columns=["user_id", "item_id", "timestamp"])
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot read Parquet: {exc}") from None
    stamps = table.column("timestamp")
    if pa.types.is_timestamp(stamps.type):
        stamps = stamps.cast(pa.timestamp("us")).cast(pa.int64())
        seconds = [None if v is None else v / 1e6 for v in stamps.to_pylist()]
    elif pa.types.is_integer(stamps.type) or pa.types.is_floating(stamps.type):
        seconds = stamps.to_pylist()
    else:
        raise DataError(f"{path}: timestamp column has type {stamps.type}; need numbers or timestamps")
    users, items = table.column("user_id").to_pylist(), table.column("item_id").to_pylist()
    for n, (user, item, ts) in enumerate(zip(users, items, seconds)):
        if user is None or item is None or ts is None:
            raise DataError(f"{path}: row {n} has an empty user_id, item_id or timestamp")
        yield str(user), str(item), float(ts)


def _timed_rows(path: Path, fmt: str) -> Iterator[tuple[str, str, float]]:
    return {"recbole": _recbole_rows, "csv": _csv_rows, "parquet": _parquet_rows}[fmt](path)


def load_timed_clicks(path: str | Path, fmt: str | None = None) -> list[tuple[str, str, float]] | None:
    """The (user, item, timestamp) rows of a file with a clock (RecBole `.inter`, CSV log), sorted
    by time; None for the formats that only keep each user's order (sasrec, s3rec)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset file not found: {path}")
    fmt = fmt or detect_format(path)
    if fmt not in TIMED_FORMATS:
        return None
    rows = list(_timed_rows(path, fmt))
    order = sorted(range(len(rows)), key=lambda n: (rows[n][2], n))  # stable among equal stamps
    return [rows[n] for n in order]


def _read_attributes(path: Path) -> dict[str, list[str]]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read item attributes: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: item attributes must be a JSON object item id -> list of attribute ids")
    return {str(k): [str(a) for a in v] for k, v in data.items()}


def load_dataset(path: str | Path, fmt: str | None = None, attributes: str | Path | None = None) -> SequenceDataset:
    """Read a dataset file into chronological sequences. `fmt` overrides the detection from the path;
    `attributes` names an item2attributes JSON (default: the sibling `<stem>_item2attributes.json`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"dataset file not found: {path}")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown dataset format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    attrs = None
    if fmt == "sasrec":
        users, seqs = _read_sasrec(path)
    elif fmt == "s3rec":
        users, seqs = _read_s3rec(path)
    elif fmt == "recbole":
        users, seqs, attrs = _read_recbole(path)
    else:
        users, seqs = _timed_sequences(_timed_rows(path, fmt))
    if attributes is None:
        stem = path.name.split(".")[0]
        sibling = path.with_name(f"{stem}_item2attributes.json")
        if sibling.exists():
            attributes = sibling
    if attributes is not None:
        attrs = _read_attributes(Path(attributes))
    if not seqs:
        raise DataError(f"{path}: no interactions found")
    name = path.name.split(".")[0]
    log.info("loaded %s (%s): %d users, %d interactions", path, fmt, len(users), sum(map(len, seqs)))
    return SequenceDataset(name=name, users=users, sequences=seqs, item_attributes=attrs, source=str(path))


# ---- leave-one-out split and batches --------------------------------------------------------------


@dataclass
class Split:
    """Leave-one-out over index sequences (SASRec's protocol): the last item of each user is the test
    target, the second-to-last the validation target, the rest is training. Users with fewer than 3
    items train on everything and are not evaluated.

    train[u]: training items; valid input = train[u], target valid_target[u]; test input =
    train[u] + [valid_target[u]], target test_target[u]. Targets are 0 for users not evaluated."""

    train: list[list[int]]
    valid_target: list[int]
    test_target: list[int]
    n_items: int

    def eval_inputs(self, which: str) -> tuple[list[list[int]], list[int]]:
        """(histories, targets) for the evaluated users of `which` in {"valid", "test"}."""
        if which == "valid":
            pairs = [(s, v) for s, v in zip(self.train, self.valid_target) if v]
        elif which == "test":
            pairs = [(s + [v], t) for s, v, t in zip(self.train, self.valid_target, self.test_target) if t]
        else:
            raise ValueError(f"which must be 'valid' or 'test', got {which!r}")
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def item_counts(self) -> list[int]:
        """Training clicks per item index (index 0, padding, stays 0): the popularity that the
        cold-start fallback and the most-popular baseline rank by."""
        counts = [0] * (self.n_items + 1)
        for seq in self.train:
            for i in seq:
                counts[i] += 1
        return counts


def leave_one_out(dataset: SequenceDataset, item_map: ItemMap) -> Split:
    train, valid, test = [], [], []
    for seq in dataset.sequences:
        idx = item_map.encode(seq)
        if len(idx) < 3:
            train.append(idx)
            valid.append(0)
            test.append(0)
        else:
            train.append(idx[:-2])
            valid.append(idx[-2])
            test.append(idx[-1])
    return Split(train=train, valid_target=valid, test_target=test, n_items=len(item_map))


def pad_left(sequences: Sequence[Sequence[int]], length: int | None = None) -> torch.Tensor:
    """Left-pad (and left-truncate, keeping the newest) index sequences to (B, length) long."""
    length = length if length is not None else max((len(s) for s in sequences), default=1)
    length = max(length, 1)
    # One tensor from Python lists: 3-4x faster than filling a zero tensor row by row (measured at
    # 256 x 50), which matters on the serving path.
    rows = [[0] * (length - len(s)) + list(s) if len(s) < length else list(s[len(s) - length:])
            for s in sequences]
    return torch.tensor(rows, dtype=torch.long).view(len(sequences), length)


# ---- synthetic clicks ----------------------------------------------------------------------------


def _cluster_of(n_items: int, n_clusters: int) -> list[int]:
    return [i % n_clusters for i in range(n_items)]


def synthetic_clicks(
    n_users: int,
    n_items: int,
    *,
    n_clusters: int = 10,
    mean_session_len: float = 6.0,
    sessions_per_user: tuple[int, int] = (2, 6),
    follow_prob: float = 0.6,
    drift: float = 0.3,
    zipf: float = 1.1,
    start: float = 1_700_000_000.0,
    seed: int = 0,
) -> list[tuple[str, str, float]]:
    """Seedable click log [(user_id, item_id, timestamp)], sorted by timestamp.

    Items ``i0..i{n-1}`` belong to cluster ``index % n_clusters``; inside a cluster popularity follows a
    Zipf law. Each user has interests over a few clusters (Dirichlet) that drift between sessions. A
    session stays mostly in one cluster; with probability `follow_prob` the next click is the current
    item's successor in its cluster (a learnable sequential pattern), otherwise a popularity draw from
    a cluster chosen by the user's interests. Sessions are hours apart, clicks seconds to minutes."""
    if n_users < 1 or n_items < n_clusters or n_clusters < 1:
        raise ValueError("need n_users >= 1 and n_items >= n_clusters >= 1")
    rng = random.Random(seed)
    clusters: list[list[int]] = [[] for _ in range(n_clusters)]
    for i, c in enumerate(_cluster_of(n_items, n_clusters)):
        clusters[c].append(i)
    pop_weights = [[1.0 / (r + 1) ** zipf for r in range(len(members))] for members in clusters]
    position = {item: (c, r) for c, members in enumerate(clusters) for r, item in enumerate(members)}

    def dirichlet(alpha: float) -> list[float]:
        g = [rng.gammavariate(alpha, 1.0) for _ in range(n_clusters)]
        s = sum(g)
        return [x / s for x in g]

    clicks: list[tuple[str, str, float]] = []
    for u in range(n_users):
        interest = dirichlet(0.3)
        t = start + rng.uniform(0, 86_400 * 7)
        for _ in range(rng.randint(*sessions_per_user)):
            fresh = dirichlet(0.3)
            interest = [(1 - drift) * a + drift * b for a, b in zip(interest, fresh)]
            c = rng.choices(range(n_clusters), weights=interest)[0]
            item = rng.choices(clusters[c], weights=pop_weights[c])[0]
            length = max(1, int(rng.expovariate(1.0 / mean_session_len)) + 1)
            for _ in range(length):
                clicks.append((f"u{u}", f"i{item}", round(t, 3)))
                t += rng.uniform(5, 300)
                if rng.random() < follow_prob:
                    c, r = position[item]
                    item = clusters[c][(r + 1) % len(clusters[c])]
                else:
                    if rng.random() < 0.2:  # occasionally switch cluster within a session
                        c = rng.choices(range(n_clusters), weights=interest)[0]
                    item = rng.choices(clusters[c], weights=pop_weights[c])[0]
            t += rng.uniform(3_600, 86_400 * 3)
    clicks.sort(key=lambda row: row[2])
    return clicks


def synthetic_categories(n_items: int, n_clusters: int = 10) -> dict[str, list[str]]:
    """The synthetic items' cluster as their one category (for CC@K / ILD@K on synthetic data)."""
    return {f"i{i}": [f"c{c}"] for i, c in enumerate(_cluster_of(n_items, n_clusters))}


def sequences_from_clicks(clicks: Iterable[tuple[str, str, float]], name: str = "clicks") -> SequenceDataset:
    users, seqs = _timed_sequences(clicks)
    return SequenceDataset(name=name, users=users, sequences=seqs)


def synthetic_dataset(n_users: int = 500, n_items: int = 200, *, n_clusters: int = 10, seed: int = 0) -> SequenceDataset:
    """`synthetic_clicks` grouped per user, with cluster categories attached."""
    clicks = synthetic_clicks(n_users, n_items, n_clusters=n_clusters, seed=seed)
    ds = sequences_from_clicks(clicks, name=f"synthetic-{n_users}x{n_items}-s{seed}")
    ds.item_attributes = synthetic_categories(n_items, n_clusters)
    return ds


def item_categories(dataset: SequenceDataset, item_map: ItemMap) -> list[frozenset[str]] | None:
    """Attribute sets per index (position 0 empty), or None when the dataset has no attributes."""
    if dataset.item_attributes is None:
        return None
    cats = [frozenset()] * (len(item_map) + 1)
    for raw, attrs in dataset.item_attributes.items():
        idx = item_map.index(raw)
        if idx is not None:
            cats[idx] = frozenset(attrs)
    return cats

