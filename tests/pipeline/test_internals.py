"""The hooks into faust-streaming's and aiokafka's private parts stay in one module, pinned to the
versions they were checked against (pipeline/serving/internals.py)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import re
from pathlib import Path

import aiokafka
import aiokafka.client
import aiokafka.consumer.fetcher
import pytest
from faust.stores import rocksdb as faust_rocksdb
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from seqrec.pipeline.serving import internals

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"
# `obj._name` on anything but self/cls, and Faust's offset key: the ways to reach into a library.
PRIVATE_ACCESS = re.compile(r"(?<![\w.])(?!self\.|cls\.)\w+(?:\.\w+)*\._[a-z]\w*|__faust")


@pytest.mark.parametrize("package", sorted(internals.CHECKED_VERSIONS))
def test_the_installed_libraries_are_the_versions_the_hooks_were_checked_against(package: str) -> None:
    installed = importlib.metadata.version(package)
    assert installed == internals.CHECKED_VERSIONS[package], (
        f"{package} {installed} is installed, the private hooks in pipeline/serving/internals.py were checked "
        f"against {internals.CHECKED_VERSIONS[package]}: re-read each hook against the new source, re-run the "
        "benchmarks it cites, then update CHECKED_VERSIONS")


def test_every_hooked_private_attribute_still_exists() -> None:
    assert callable(getattr(faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer", None))
    assert callable(getattr(faust_aiokafka.Consumer, "_new_consumer_thread", None))
    # The reason for _LowLatencyConsumerThread._highwaters: Faust's own reads the fetch-time LSO.
    assert "last_stable_offset" in inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread._highwaters)
    assert callable(getattr(faust_aiokafka.AIOKafkaConsumerThread, "_ensure_consumer", None))
    assert callable(getattr(faust_aiokafka.Consumer, "_getmany", None))
    # The reason for Consumer._getmany: aiokafka reads an empty partition set as "all partitions".
    assert "if partitions and tp not in partitions" in inspect.getsource(aiokafka.consumer.fetcher.Fetcher.fetched_records)
    assert callable(getattr(faust_aiokafka.Producer, "_ensure_producer", None))
    assert callable(getattr(faust_rocksdb.Store, "_db_for_partition", None))
    assert isinstance(getattr(faust_aiokafka.Producer, "_transaction_producers", None), dict)
    assert "self._txn_manager" in inspect.getsource(aiokafka.AIOKafkaProducer.__init__)
    assert callable(getattr(aiokafka.producer.transaction_manager.TransactionManager, "is_in_transaction", None))
    assert callable(getattr(faust_aiokafka.Consumer, "force_commit", None))
    assert 'f"{self.app.conf.id}-{group}-{p}"' in inspect.getsource(faust_consumer.TransactionManager.send)
    assert callable(getattr(aiokafka.client.AIOKafkaClient, "_wait_on_metadata", None))
    assert "self._fetch_max_wait_ms" in inspect.getsource(aiokafka.AIOKafkaConsumer.__init__)
    assert "self._partitioner" in inspect.getsource(aiokafka.AIOKafkaProducer.__init__)
    assert "on_partitions_revoked" in vars(faust_aiokafka.Consumer) or hasattr(faust_aiokafka.Consumer,
                                                                             "on_partitions_revoked")


def test_each_fetch_gets_a_copy_of_the_active_partitions_and_never_an_empty_set() -> None:
    handed: list[set] = []

    class ConsumerThread:  # stands in for aiokafka's thread: records what each fetch was given
        async def getmany(self, active_partitions: set, timeout: float) -> dict:
            handed.append(active_partitions)
            return {"tp": ["record"]}

    consumer = internals.Consumer.__new__(internals.Consumer)
    consumer._thread = ConsumerThread()
    live = {"clicks-0", "clicks-1"}
    assert asyncio.run(consumer._getmany(live, 1.0)) == {"tp": ["record"]}
    assert handed == [live] and handed[0] is not live  # pausing `live` later cannot reach the fetch
    assert asyncio.run(consumer._getmany(set(), 1.0)) == {}  # no fetch: empty would mean "all"
    assert len(handed) == 1


def test_no_other_module_reaches_into_a_private_attribute() -> None:
    offenders = []
    for path in sorted(PIPELINE.rglob("*.py")):
        if path.name == "internals.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = re.sub(r"`[^`]*`", "", line.split("#", 1)[0])  # prose naming a method is not a call
            if PRIVATE_ACCESS.search(code) and not code.lstrip().startswith(("\"", "'")):
                offenders.append(f"{path.relative_to(PIPELINE.parent)}:{number}: {line.strip()}")
    assert not offenders, "private library access outside pipeline/serving/internals.py:\n" + "\n".join(offenders)


def test_the_check_finds_what_it_looks_for() -> None:
    for line in ("producer._partitioner(key, p, p)", "app.producer._ensure_producer()", 'KEY = b"__faust\\x00offset__"'):
        assert PRIVATE_ACCESS.search(line), line
    for line in ("self._states.clear()", "cls._registry", "x = a.b_c + d", "payload.get('extra')"):
        assert not PRIVATE_ACCESS.search(line), line
