from seqrec.pipeline.cli.options import settings_from_options
from seqrec.pipeline.cli.worker_cmd import worker
from seqrec.pipeline.settings import Settings


def test_env_prefix_and_nested_groups(monkeypatch):
    monkeypatch.setenv("SEQREC_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("SEQREC_BATCHING__MAX_SIZE", "128")
    monkeypatch.setenv("SEQREC_APP_ID", "svc")
    s = Settings()
    assert (s.kafka.bootstrap_servers, s.batching.max_size, s.app_id) == ("k1:9092,k2:9092", 128, "svc")
    assert s.changelog_topic == "svc-user-history-changelog"


def test_cli_options_override_env(monkeypatch):
    monkeypatch.setenv("SEQREC_BATCHING__MAX_SIZE", "128")
    monkeypatch.setenv("SEQREC_WEB__PORT", "7000")
    s = settings_from_options(worker, {"max_batch": 16, "web_port": None, "web": False})
    assert s.batching.max_size == 16 and s.web.port == 7000 and s.web.enabled is False
