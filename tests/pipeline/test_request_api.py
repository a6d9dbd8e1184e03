"""The request API on the real broker: two `seqrec worker --recommend-api` subprocesses in one
group, with a token. One deployment serves every test here (the last one stops a worker); each
request's answer is compared with the model's own answer for the user's history."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka.partitioner.default import murmur2

from seqrec.model.inference import Recommender
from seqrec.pipeline.cli import main
from seqrec.pipeline.client import RequestApiError, recommend
from seqrec.pipeline.devtools.harness import WorkerProcess, consume_until, produce_clicks
from seqrec.pipeline.errors import ConfigError
from seqrec.pipeline.serving.request_api import BadRequest, authorized, check_user_id, parse_k
from seqrec.pipeline.serving.source import ClickEvent
from seqrec.pipeline.settings import load_settings
from seqrec.schemas import validator

TOKEN = "s3cret-token"
USERS = 40


def test_k_user_id_and_token_rules() -> None:
    assert parse_k(None, 10) == 10 and parse_k("100", 10) == 100
    for bad in ("0", "101", "-1", "1.5", ""):
        with pytest.raises(BadRequest, match=r"k must be an integer in 1\.\.100"):
            parse_k(bad, 10)
    with pytest.raises(BadRequest):
        check_user_id("")
    assert authorized(None, None) and authorized("Bearer t0k", "t0k") and authorized("bearer t0k", "t0k")
    assert not any(authorized(h, "t0k") for h in (None, "", "Bearer", "Bearer t0", "Basic t0k", "t0k"))


def test_the_token_comes_from_one_setting_and_is_never_shown(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    assert load_settings(serving={"api_token_file": tmp_path / "token"}).serving.bearer_token() == "from-file"
    serving = load_settings(serving={"api_token": "hidden-value"}).serving
    assert serving.bearer_token() == "hidden-value" and "hidden-value" not in repr(serving)
    with pytest.raises(ConfigError, match="one of api_token and api_token_file") as both:
        load_settings(serving={"api_token": "hidden-value", "api_token_file": tmp_path / "token"})
    assert "hidden-value" not in str(both.value)
    with pytest.raises(ConfigError, match="cannot read the API token file"):
        load_settings(serving={"api_token_file": tmp_path / "missing"}).serving.bearer_token()


@dataclass
class Served:
    deployment: Any
    a: WorkerProcess
    b: WorkerProcess
    partitions: int
    histories: dict[str, list[str]]  # user -> the items the worker keeps, oldest first
    model: Recommender
    c: WorkerProcess | None = None  # a third worker, started by the last test

    def owned_by(self, worker: WorkerProcess) -> str:
        """A user with a history whose clicks partition (kafka-python's murmur2 of the key, as the
        producer chose it) is one of `worker`'s."""
        _, body = worker.get("/ready")
        mine = set(json.loads(body)["partitions"])
        return next(u for u in self.histories if (murmur2(u.encode()) & 0x7FFFFFFF) % self.partitions in mine)

    def expected(self, user: str, k: int) -> list[str]:
        return [item for item, _ in self.model.recommend([self.histories.get(user, [])], k)[0]]


def url(worker: WorkerProcess) -> str:
    return f"http://127.0.0.1:{worker.web_port}"


def ask(worker: WorkerProcess, path: str, token: str | None = TOKEN) -> tuple[int, dict, dict]:
    """(status, JSON body, headers) of a GET on `worker`."""
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url(worker) + path, headers=headers), timeout=10) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


@pytest.fixture(scope="module")
def served(kafka_bootstrap: str, tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory,
           deployment_class: type) -> Iterator[Served]:
    d = deployment_class(kafka_bootstrap, tiny_checkpoint, tmp_path_factory.mktemp("api"),
                         env={"SEQREC_SERVING__API_TOKEN": TOKEN})
    try:
        a, b = d.worker("--recommend-api"), d.worker("--recommend-api")
        a.wait_ready(120)
        b.wait_ready(120)
        now = int(time.time() * 1000)
        # Items the model knows (i0..i99), so that an answer depends on the history.
        clicks = [ClickEvent(f"e{j}", f"u{j % USERS}", f"i{(j * 7) % 100}", now + j) for j in range(400)]
        produce_clicks(d.bootstrap, d.clicks, clicks)
        ids = {c.event_id for c in clicks}
        consume_until(d.bootstrap, d.recommendations, lambda r: ids <= {x["event_id"] for x in r}, timeout_s=90)
        histories: dict[str, list[str]] = {}
        for c in clicks:
            histories.setdefault(c.user_id, []).append(c.item_id)
        histories = {u: items[-d.history_len:] for u, items in histories.items()}
        a.wait_ready(60)
        b.wait_ready(60)
        yield Served(d, a, b, d.partitions, histories, Recommender.from_checkpoint(tiny_checkpoint, device="cpu"))
    finally:
        for w in d.workers:
            w.kill()


def test_a_worker_that_does_not_own_the_user_returns_the_owners_list(served: Served) -> None:
    user = served.owned_by(served.b)
    status, forwarded, _ = ask(served.a, f"/users/{user}/recommendations?k=7")  # a forwards to b, token and all
    assert status == 200, forwarded
    status, direct, _ = ask(served.b, f"/users/{user}/recommendations?k=7")
    assert status == 200, direct
    assert [i["item_id"] for i in forwarded["items"]] == served.expected(user, 7)  # from b's history of the user
    assert [i["item_id"] for i in direct["items"]] == served.expected(user, 7)
    # The topic's answer contract, plus where it came from; never the history.
    contract = {k: v for k, v in forwarded.items() if k not in ("source", "fallback")}
    validator("recommendation")(contract)
    assert forwarded["source"] == "request" and forwarded["fallback"] is None and forwarded["user_id"] == user
    assert set(forwarded) == set(contract) | {"source", "fallback"}
    assert forwarded["model_version"] == direct["model_version"]


def test_a_user_with_no_history_gets_the_popularity_fallback_marked(served: Served) -> None:
    status, body, _ = ask(served.a, "/users/somebody-new/recommendations?k=5")
    assert status == 200, body
    assert body["fallback"] == "popularity"
    assert [i["item_id"] for i in body["items"]] == served.expected("somebody-new", 5)


def test_token_and_arguments_are_checked(served: Served) -> None:
    user = served.owned_by(served.b)
    for token in (None, "wrong"):
        status, body, headers = ask(served.a, f"/users/{user}/recommendations", token=token)
        assert status == 401 and headers.get("WWW-Authenticate") == "Bearer", (status, body)
        assert set(body) == {"error"}
    for query in ("?k=0", "?k=101", "?k=ten"):
        status, body, _ = ask(served.a, f"/users/{user}/recommendations{query}")
        assert status == 400 and "k must be an integer in 1..100" in body["error"], (query, body)
    status, body, _ = ask(served.a, f"/users/{'x' * 129}/recommendations")
    assert status == 400 and "user_id" in body["error"]


def test_a_burst_of_requests_is_scored_in_shared_batches(served: Served) -> None:
    owner = served.b
    users = [u for u in served.histories if u == served.owned_by(owner)] * 24
    before = owner.metric("seqrec_batch_size_count"), owner.metric("seqrec_batch_size_sum")
    with concurrent.futures.ThreadPoolExecutor(len(users)) as pool:
        answers = list(pool.map(lambda u: ask(owner, f"/users/{u}/recommendations?k=3"), users))
    assert all(status == 200 for status, _, _ in answers), answers[:2]
    batches = owner.metric("seqrec_batch_size_count") - before[0]
    scored = owner.metric("seqrec_batch_size_sum") - before[1]
    assert scored == len(users) and batches < len(users), (batches, scored)


def test_the_cli_prints_the_list_with_the_token_from_the_environment(served: Served, capsys, monkeypatch) -> None:
    user = served.owned_by(served.a)
    monkeypatch.setenv("SEQREC_SERVING__API_TOKEN", TOKEN)
    assert main(["recommend", user, "--k", "3", "--url", url(served.b)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines[1:]] == served.expected(user, 3), lines
    monkeypatch.delenv("SEQREC_SERVING__API_TOKEN")
    assert main(["recommend", user, "--url", url(served.b)]) == 1
    assert capsys.readouterr().err.strip() == "seqrec: error: 401: missing or wrong bearer token"
    with pytest.raises(RequestApiError) as refused:
        recommend(user, k=0, url=url(served.a), token=TOKEN)
    assert refused.value.status == 400


def test_while_partitions_move_the_answer_is_the_owners_list_or_503(served: Served, deployment_class: type) -> None:
    """A third worker joins: every worker rebalances and the newcomer recovers its partitions from
    the changelog. Asked meanwhile, the newcomer and an old worker give the list from the user's
    full history or a 503 with Retry-After, never a list from a missing or partial history. The
    newcomer's web server is up before it is ready, so it always says 503 first."""
    users = {served.a: served.owned_by(served.b), "newcomer": served.owned_by(served.a)}
    seen: dict[object, list[tuple[int, dict, str | None]]] = {w: [] for w in users}
    stop = threading.Event()

    def poll(worker: WorkerProcess | str) -> None:
        while not stop.is_set():
            target = served.c if worker == "newcomer" else worker
            if target is None:
                time.sleep(0.05)
                continue
            try:
                status, body, headers = ask(target, f"/users/{users[worker]}/recommendations")
            except OSError:  # its web server is not up yet
                time.sleep(0.05)
                continue
            seen[worker].append((status, body, headers.get("Retry-After")))
            time.sleep(0.05)

    pollers = [threading.Thread(target=poll, args=(w,), daemon=True) for w in users]
    for p in pollers:
        p.start()
    served.c = served.deployment.worker("--recommend-api")
    served.c.wait_ready(120)
    time.sleep(1.0)  # a few answers after it is ready
    stop.set()
    for p in pollers:
        p.join(5)
    for worker, answers in seen.items():
        statuses = [s for s, _, _ in answers]
        assert set(statuses) <= {200, 503}, statuses
        expected = served.expected(users[worker], 10)
        assert all([i["item_id"] for i in body["items"]] == expected for s, body, _ in answers if s == 200), \
            "a list from another history"
        assert all(retry == "1" for s, _, retry in answers if s == 503)
        assert statuses and statuses[-1] == 200, statuses
    newcomer = [body["error"] for s, body, _ in seen["newcomer"] if s == 503]
    print(f"\nthe newcomer's 503s: {sorted(set(newcomer))}; the old worker's statuses: "
          f"{[s for s, _, _ in seen[served.a]]}")
    assert newcomer, "the newcomer answered before it was ready"
