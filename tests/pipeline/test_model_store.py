"""The model store on every backend it is run on here: a local directory, memory:// and s3:// on a
real S3 server. Versions, promotion, rollback, retention, refusal of bad files, of bytes that do not
match their checksum and of architectures the serving workers would refuse; the order of writes; a
store that cannot be reached or refuses the credentials is one line without the secret. The
checkpoints are really trained (a second each), so their metrics are the ones `seqrec train` writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from seqrec.model.data import sequences_from_clicks, synthetic_clicks
from seqrec.model.errors import CheckpointError
from seqrec.model.train import TrainConfig, train
from seqrec.pipeline.cli import main
from seqrec.pipeline.devtools.kafka_local import free_port
from seqrec.pipeline.devtools.s3_provider import moto_server
from seqrec.pipeline.lifecycle.model_store import IncompatibleVersionError, ModelStore
from seqrec.pipeline.storage.location import redact


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four same-shape checkpoints (seeds 1-4) and one wider one."""
    data = sequences_from_clicks(synthetic_clicks(120, 40, seed=1))
    root = tmp_path_factory.mktemp("trained")

    def one(name: str, seed: int, d_model: int = 8) -> Path:
        return train(data, None, TrainConfig(epochs=1, progress=False, device="cpu", seed=seed), root / name,
                     max_len=8, d_model=d_model, n_heads=2, n_blocks=1).best_path

    return {**{str(seed): one(f"s{seed}", seed) for seed in range(1, 5)}, "wider": one("wider", 1, d_model=16)}


@pytest.fixture(params=["dir", "memory", "s3"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store on each backend (s3: a new bucket, this process's AWS_* set for it)."""
    if request.param == "dir":
        return str(tmp_path / "store")
    if request.param == "memory":
        return f"memory://models-{uuid.uuid4().hex[:8]}"
    return f"{request.getfixturevalue('s3_bucket')}/models"


def make_checkpoint(trained: dict[str, Path], path: Path, seed: int) -> Path:
    path.write_bytes(trained[str(seed)].read_bytes())
    return path


def damage(store: ModelStore, version: str, data: bytes) -> None:
    """Replace a stored checkpoint's bytes behind the store's back (a bad disk, a stray upload)."""
    store.fs.pipe_file(f"{store.root}/versions/{version}.pt", data)


def test_publish_promote_and_rollback(trained, store_url: str, tmp_path: Path) -> None:
    store = ModelStore(store_url)
    assert store.latest() is None and store.versions() == []
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    v2 = store.publish(make_checkpoint(trained, tmp_path / "b.pt", 2))
    assert v1 != v2
    assert store.latest() == v2
    assert [v.version for v in store.versions()] == [v1, v2]
    assert store.checkpoint_path(v2).read_bytes() == trained["2"].read_bytes()
    assert store.rollback() == v1
    assert ModelStore(store_url).latest() == v1, "another reader of the store sees the rollback"
    with pytest.raises(CheckpointError, match="nothing to roll back"):
        store.rollback()
    store.promote(v2)
    assert store.latest() == v2


def test_publish_without_promotion_keeps_serving_version(trained, store_url: str, tmp_path: Path) -> None:
    store = ModelStore(store_url)
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    v2 = store.publish(make_checkpoint(trained, tmp_path / "b.pt", 2), promote=False)
    assert store.latest() == v1
    assert store.info(v2).quality == pytest.approx(store.info(v2).metrics["valid"]["NDCG@10"])


def test_corrupt_checkpoint_is_refused_and_serving_unchanged(trained, store_url: str, tmp_path: Path) -> None:
    store = ModelStore(store_url)
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(CheckpointError):
        store.publish(bad)
    assert store.latest() == v1
    assert len(store.versions()) == 1


def test_bytes_that_do_not_match_the_checksum_are_refused(trained, store_url: str, tmp_path: Path) -> None:
    store = ModelStore(store_url)
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    v2 = store.publish(make_checkpoint(trained, tmp_path / "b.pt", 2))
    # A valid checkpoint, but not the one published as v2: only the checksum can tell.
    damage(store, v2, trained["3"].read_bytes())
    with pytest.raises(CheckpointError, match=f"version {v2} .* does not match its checksum"):
        store.checkpoint_path(v2)
    assert store.rollback() == v1
    assert store.checkpoint_path(v1).read_bytes() == trained["1"].read_bytes()


def test_a_publisher_that_dies_before_the_manifest_changes_nothing_served(
        trained, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ModelStore(store_url)
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    writes: list[str] = []
    real_put = ModelStore._put
    killed = False

    def put_then_die_at_the_manifest(self: ModelStore, name: str, data: bytes) -> None:
        nonlocal killed
        writes.append(name)
        if name.endswith(".json") and not killed:
            killed = True
            raise OSError("publisher killed")
        real_put(self, name, data)

    monkeypatch.setattr(ModelStore, "_put", put_then_die_at_the_manifest)
    with pytest.raises(OSError, match="publisher killed"):
        store.publish(make_checkpoint(trained, tmp_path / "b.pt", 2))
    v2 = writes[0].removeprefix("versions/").removesuffix(".pt")
    assert writes == [f"versions/{v2}.pt", f"versions/{v2}.json"], "the checkpoint goes up before what vouches for it"
    assert store.latest() == v1 and store.history() == [v1]
    with pytest.raises(CheckpointError, match="has no manifest"):
        store.checkpoint_path(v2)  # half-published: never loaded, even if someone points at it

    writes.clear()
    assert store.publish(tmp_path / "b.pt") == v2  # publishing again completes it
    assert writes == [f"versions/{v2}.pt", f"versions/{v2}.json", "history.json", "LATEST"]
    assert store.latest() == v2 and store.checkpoint_path(v2).read_bytes() == trained["2"].read_bytes()


def test_retention_keeps_last_n_and_rollback_targets(trained, store_url: str, tmp_path: Path) -> None:
    store = ModelStore(store_url, keep=2)
    versions = [store.publish(make_checkpoint(trained, tmp_path / f"{i}.pt", i)) for i in range(1, 5)]
    kept = [v.version for v in store.versions()]
    assert kept == versions[-2:]
    assert not store.fs.exists(f"{store.root}/versions/{versions[0]}.json"), "a pruned version's manifest stays"
    assert store.rollback() == versions[-2]


def test_models_cli_lists_and_rolls_back(trained, store_url: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    store = ModelStore(store_url)
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    v2 = store.publish(make_checkpoint(trained, tmp_path / "b.pt", 2))

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(["models", *args, "--store", store_url])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, listing, _ = cli("list")
    assert code == 0
    assert f"* {v2}" in listing and f"  {v1}" in listing
    # The quality column: the validation NDCG@10 that training stored in each checkpoint.
    for version in (v1, v2):
        line = next(row for row in listing.splitlines() if version in row)
        assert f"valid NDCG@10 {store.info(version).quality:.4f}" in line, line
    code, shown, _ = cli("show", v1)
    assert code == 0 and json.loads(shown)["url"] == f"{store_url}/versions/{v1}.pt"
    assert cli("rollback")[1].strip() == f"serving {v1}"
    assert store.latest() == v1
    code, _, err = cli("show", "no-such-version")
    assert code == 1 and "no version 'no-such-version'" in err


def test_list_survives_an_unreadable_file_and_marks_it(trained, store_url: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    store = ModelStore(store_url)
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    v2 = store.publish(make_checkpoint(trained, tmp_path / "b.pt", 2))
    damage(store, v1, b"a damaged volume")
    assert main(["models", "list", "--store", store_url]) == 0
    listing = sorted(capsys.readouterr().out.splitlines(), key=lambda row: v1 not in row)
    assert len(listing) == 2
    assert listing[0].startswith(f" !{v1}  unreadable: version {v1}") and "does not match its checksum" in listing[0]
    assert listing[1].startswith(f"* {v2}") and "valid NDCG@10" in listing[1], listing


def test_incompatible_architecture_is_refused_unless_forced(trained, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    store_dir = tmp_path / "store"
    store = ModelStore(store_dir)
    v1 = store.publish(make_checkpoint(trained, tmp_path / "a.pt", 1))
    wider = trained["wider"]

    assert main(["models", "publish", str(wider), "--store", str(store_dir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot replace the serving version" in err[0] and "d_model is 16" in err[0], err
    assert "--force-incompatible" in err[0]
    assert store.latest() == v1 and len(store.versions()) == 1, "a refused version must not enter the store"

    v_wide = store.publish(wider, promote=False)  # stored, not serving: nothing to refuse
    with pytest.raises(IncompatibleVersionError, match="d_model is 16, the serving model has 8"):
        store.promote(v_wide)
    assert store.latest() == v1

    assert main(["models", "promote", v_wide, "--store", str(store_dir), "--force-incompatible"]) == 0
    assert store.latest() == v_wide
    assert "running workers keep serving" in caplog.text and v1 in caplog.text


SECRET = "hunter2-not-for-logs"


def models_list(store: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`seqrec models list` in a process of its own: s3fs keeps one client per process, made with
    the credentials of its first use."""
    # One attempt: botocore's retries would take about 10 s to give up on a closed port.
    return subprocess.run([sys.executable, "-m", "seqrec.pipeline.cli", "models", "list", "--store", store],
                          env={**env, "AWS_MAX_ATTEMPTS": "1"}, capture_output=True, text=True, timeout=120)


def unreachable_s3_env() -> dict[str, str]:
    return {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.mark.parametrize("failure, url, reason", [
    ("unreachable", "s3://models-bucket/prod", "EndpointConnectionError: Could not connect"),
    ("wrong credentials", "s3://models-bucket/prod", "PermissionError"),
    ("secret in the URL", f"s3://reader:{SECRET}@models-bucket/prod", "ParamValidationError: Parameter validation failed: Invalid bucket name"),
])
def test_a_store_that_cannot_be_used_is_one_line_naming_it_without_the_secret(failure: str, url: str,
                                                                               reason: str) -> None:
    if failure == "wrong credentials":
        with moto_server(check_credentials=True) as strict:  # knows no key pair at all
            result = models_list(url, {**unreachable_s3_env(), "AWS_ENDPOINT_URL": strict.endpoint})
    else:
        result = models_list(url, unreachable_s3_env())
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"seqrec: error: cannot read the model store {redact(url)}: {reason}"), lines
    assert SECRET not in result.stderr + result.stdout
