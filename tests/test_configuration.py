"""One configuration: every setting has one environment variable (pipeline/settings.py), every
command-line option that sets a setting is made from it (pipeline/cli/options.py), and nothing
else reads the environment. The old second names still work for now, each with a one-line
warning that names the variable to set instead."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from seqrec.pipeline.cli import cli, main
from seqrec.pipeline.cli.options import SettingOption, all_commands, setting_option
from seqrec.pipeline.settings import DEPRECATED_ENV, OTHER_ENV, Settings, env_name, leaf_fields, load_settings

ROOT = Path(__file__).resolve().parents[1]

# Model commands: their options configure training (TrainConfig, ModelConfig), which travels with the
# checkpoint, not the deployment; `seqrec train --device` is the training device, not serving.device.
MODEL_COMMANDS = {"train", "evaluate"}
TEST_ONLY_ENV = {"SEQREC_SHARED_DATA", "SEQREC_TEST_S3_ENDPOINT"}  # where tests/conftest.py finds the datasets and S3
# Where the deprecated names may appear: their definition, the generated table, the troubleshooting row.
OLD_NAMES_ALLOWED = {"settings.py", "configuration.md", "README.md"}


def option_problems(commands: dict[str, click.Command]) -> list[str]:
    """Options that read the environment themselves or set a setting without being made from it."""
    setting_like = {path[-1] for path in leaf_fields()}
    setting_like |= {p.name for c in commands.values() for p in c.params if isinstance(p, SettingOption)}
    problems = []
    for name, command in commands.items():
        for param in (p for p in command.params if isinstance(p, click.Option)):  # arguments are inputs
            where = f"seqrec {name} {'/'.join(param.opts)}"
            if isinstance(param, SettingOption):
                if param.setting not in leaf_fields():
                    problems.append(f"{where}: no setting {'.'.join(param.setting)}")
                continue
            if param.envvar:
                problems.append(f"{where} reads {param.envvar} itself")
            elif name not in MODEL_COMMANDS and param.name in setting_like:
                problems.append(f"{where} sets a setting by hand: make it a setting_option")
    return problems


def test_every_option_that_sets_a_setting_is_made_from_it() -> None:
    commands = all_commands(cli)
    assert {"worker", "retrain", "models list", "replay", "evaluate-replay", "kafka start"} <= set(commands)
    assert option_problems(commands) == []


def test_the_check_catches_an_option_with_its_own_default_or_variable() -> None:
    @click.command("evaluate-replay")
    @click.option("--history-len", type=int, default=50)
    @click.option("--store", envvar="SEQREC_MODEL_STORE")
    def twin(history_len: int, store: str) -> None:
        """A command written the old way."""

    problems = option_problems({**all_commands(cli), "evaluate-replay": twin})
    assert problems == ["seqrec evaluate-replay --history-len sets a setting by hand: make it a setting_option",
                        "seqrec evaluate-replay --store reads SEQREC_MODEL_STORE itself"]


@pytest.mark.parametrize(("setting", "extra", "refused"), [
    ("store.no_such_thing", {}, "no setting 'store.no_such_thing'"),
    ("kafka.security.sasl_password", {}, "from the environment only"),
    ("kafka.security.sasl_password_file", {}, "from the environment only"),
    ("store.history_len", {"default": 30}, "the default and the variable are the setting's"),
    ("store.history_len", {"envvar": "HISTORY"}, "the default and the variable are the setting's"),
])
def test_a_setting_option_needs_a_setting_and_keeps_secrets_off_the_command_line(
        setting: str, extra: dict, refused: str) -> None:
    with pytest.raises(ValueError, match=refused):
        setting_option("--x", setting=setting, **extra)(lambda x: None)


def test_one_environment_variable_per_setting() -> None:
    names = [env_name(path) for path in leaf_fields()]
    assert len(names) == len(set(names))
    for path, field in leaf_fields().items():
        assert field.alias is None and field.validation_alias is None, f"{'.'.join(path)} has a second name"
    for old, path in DEPRECATED_ENV.items():
        assert path in leaf_fields() and old not in names, old


def test_only_the_settings_read_the_environment() -> None:
    reads = re.compile(r"os\.environ(\.get\(|\[)|os\.getenv\(|envvar=")
    readers = {p.relative_to(ROOT).as_posix() for p in (ROOT / "pipeline").rglob("*.py")
               if reads.search(p.read_text(encoding="utf-8"))}
    assert readers == {"pipeline/settings.py", "pipeline/devtools/kafka_local.py"}, readers
    local_reads = re.findall(r'os\.environ\.get\("(\w+)"', (ROOT / "pipeline" / "devtools" / "kafka_local.py").read_text())
    assert local_reads == list(OTHER_ENV)


def test_code_docs_and_compose_name_each_setting_by_its_one_variable() -> None:
    known = {env_name(path[:i]) for path in leaf_fields() for i in range(1, len(path) + 1)}  # SEQREC_KAFKA__*
    files = [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "docs").glob("*.md"), ROOT / "README.md",
             *(ROOT / "deploy").glob("*.yml"), ROOT / "deploy" / "Dockerfile", *(ROOT / "benchmarks").rglob("*.py")]
    for path in files:
        text = path.read_text(encoding="utf-8")
        unknown = set(re.findall(r"\bSEQREC_[A-Z0-9_]*[A-Z0-9]", text)) - known - TEST_ONLY_ENV
        if path.name in OLD_NAMES_ALLOWED:
            unknown -= set(DEPRECATED_ENV)
        else:
            unknown |= {old for old in DEPRECATED_ENV if re.search(rf"\b{old}\b", text)}
        assert not unknown, f"{path.relative_to(ROOT)}: {sorted(unknown)}"


def test_commands_read_the_workers_variable_for_the_model_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    # Before: `seqrec models` read SEQREC_MODEL_STORE only, and a user who had set the worker's
    # variable managed ./models without noticing.
    monkeypatch.setenv("SEQREC_SERVING__MODEL_STORE", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)
    assert main(["models", "list"]) == 0
    assert capsys.readouterr().out.strip() == f"no versions in {tmp_path / 'store'}"
    assert not (tmp_path / "models").exists()


def test_an_option_wins_over_the_variable_which_wins_over_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from seqrec.pipeline.cli.options import settings_from_options
    from seqrec.pipeline.cli.replay_cmd import evaluate_replay

    monkeypatch.setenv("SEQREC_STORE__HISTORY_LEN", "20")
    monkeypatch.setenv("SEQREC_KAFKA__CLICKS_TOPIC", "env-clicks")
    s = settings_from_options(evaluate_replay, {"history_len": 7, "clicks_topic": None})
    assert (s.store.history_len, s.kafka.clicks_topic, s.kafka.recommendations_topic) == (7, "env-clicks",
                                                                                         "recommendations")


def test_a_deprecated_name_is_read_when_the_new_one_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEQREC_KAFKA__BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "old-host:9092")
    assert load_settings().kafka.bootstrap_servers == "old-host:9092"
    monkeypatch.setenv("SEQREC_KAFKA__BOOTSTRAP_SERVERS", "new-host:9092")
    assert load_settings().kafka.bootstrap_servers == "new-host:9092"
    assert Settings(kafka={"bootstrap_servers": "given:1"}).kafka.bootstrap_servers == "given:1"


def _seqrec(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEQREC_") and k not in DEPRECATED_ENV}
    return subprocess.run([sys.executable, "-m", "seqrec.pipeline.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**clean, "PYTHONPATH": str(ROOT), **env})


def test_a_user_of_an_old_name_gets_one_line_naming_the_new_one(tmp_path: Path) -> None:
    result = _seqrec(tmp_path, {"SEQREC_MODEL_STORE": str(tmp_path / "store")}, "models", "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"no versions in {tmp_path / 'store'}", "the old name is still honoured"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        "SEQREC_MODEL_STORE is deprecated: set SEQREC_SERVING__MODEL_STORE instead (read in its place for now)"), lines
    assert not (tmp_path / "models").exists()


def test_an_old_name_beside_the_new_one_is_ignored_with_one_line(tmp_path: Path) -> None:
    both = {"KAFKA_BOOTSTRAP_SERVERS": "old-host:1", "SEQREC_KAFKA__BOOTSTRAP_SERVERS": "new-host:2"}
    result = _seqrec(tmp_path, both, "kafka", "start")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "new-host:2"
    lines = result.stderr.strip().splitlines()
    assert lines[0].endswith("KAFKA_BOOTSTRAP_SERVERS is deprecated and ignored: SEQREC_KAFKA__BOOTSTRAP_SERVERS "
                             "is set; unset KAFKA_BOOTSTRAP_SERVERS"), lines
    assert lines[1:] == ["SEQREC_KAFKA__BOOTSTRAP_SERVERS is set: using that cluster, nothing started."]
