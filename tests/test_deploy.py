"""Deployment files against the code they deploy. No Docker engine runs here, so the compose file,
the Prometheus configuration and the Dockerfile are parsed and checked against what the code
reads: the `Settings` fields (built from each service's environment), the commands' options, the
install steps CI runs. Also: docs/configuration.md is what deploy/gen_config_docs.py
generates from the settings code now."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import TypeAdapter

from seqrec.pipeline.settings import DEPRECATED_ENV, Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_config_docs", DEPLOY / "gen_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
KNOWN_VARS = set(gen.settings_env_vars())


# ---- helpers -------------------------------------------------------------------------------------


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE form
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def seqrec_services() -> dict[str, dict[str, Any]]:
    """Services that run the image built from deploy/Dockerfile."""
    return {name: s for name, s in SERVICES.items()
            if isinstance(s.get("build"), dict) and s["build"].get("dockerfile") == "deploy/Dockerfile"}


def workers() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in seqrec_services().items() if s.get("command", [None])[0] == "worker"}


def settings_from_env(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a process with exactly this SEQREC_* environment builds."""
    for name in list(os.environ):
        if name.upper().startswith("SEQREC_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def named_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> named volume (bind mounts left out)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if not source.startswith((".", "/", "~")):
            mounts[target] = source
    return mounts


def volume_at(service: dict[str, Any], path: Path) -> str | None:
    """The named volume that holds `path` in the service's container."""
    for target, source in named_mounts(service).items():
        if path == Path(target) or Path(target) in path.parents:
            return source
    return None


def options_of(args: list[str]) -> dict[str, str | None]:
    """`--flag value` / `--flag` pairs of a command line, after the command name."""
    out: dict[str, str | None] = {}
    i = 0
    while i < len(args):
        if args[i].startswith("--"):
            has_value = i + 1 < len(args) and not args[i + 1].startswith("--")
            out[args[i]] = args[i + 1] if has_value else None
            i += 2 if has_value else 1
        else:
            i += 1
    return out


def unknown_seqrec_vars(names: set[str]) -> set[str]:
    return {n for n in names if n.startswith("SEQREC_") and n not in KNOWN_VARS}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    return [(ins.upper(), rest.strip()) for ins, _, rest in (l.strip().partition(" ") for l in logical)]


def install_sh_pip_lines() -> list[str]:
    return [line.strip() for line in (DEPLOY / "install.sh").read_text(encoding="utf-8").splitlines()
            if re.match(r"\s*python3? -m pip install", line)]


# ---- compose: services, images, volumes ----------------------------------------------------------


def test_compose_has_the_whole_system() -> None:
    kafka_services = [n for n, s in SERVICES.items() if str(s.get("image", "")).startswith("apache/kafka:")]
    assert "kafka" in kafka_services and "topics" in kafka_services
    assert len(workers()) >= 2, "N workers: at least two, to show partitions spread over workers"
    retrain = [n for n, s in seqrec_services().items() if s["command"][0] == "retrain"]
    assert retrain == ["retrain"]
    assert str(SERVICES["prometheus"]["image"]).startswith("prom/prometheus:")
    for name, service in SERVICES.items():  # reproducible: every pulled image pinned to a tag
        if name in seqrec_services():
            continue  # built here
        image = str(service["image"])
        assert ":" in image and image.rpartition(":")[2] != "latest", f"{name}: pin {image!r} to a version"


def test_seqrec_services_build_this_repository() -> None:
    for name, service in seqrec_services().items():
        build = service["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE
        assert service["image"] == "seqrec:latest"
        assert set(build.get("args", {})) <= {ins[1].split("=")[0] for ins in dockerfile_instructions() if ins[0] == "ARG"}


def test_named_volumes_are_declared() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    used = {source for s in SERVICES.values() for source in named_mounts(s).values()}
    assert used == declared, f"used {sorted(used)}, declared {sorted(declared)}"


def test_kafka_is_a_single_kraft_node_the_clients_can_reach() -> None:
    kafka = env_of(SERVICES["kafka"])
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    listeners = dict(re.match(r"(\w+)://([^:]*):(\d+)$", l).group(1, 3) for l in kafka["KAFKA_LISTENERS"].split(","))
    controller = kafka["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{kafka['KAFKA_NODE_ID']}@kafka:{listeners[controller]}"
    assert "ZOOKEEPER" not in " ".join(kafka) and kafka.get("CLUSTER_ID")
    advertised = {}
    for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","):
        name, host, port = re.match(r"(\w+)://([^:]+):(\d+)$", item).groups()
        assert listeners[name] == port, f"{name} advertised on {port} but listens on {listeners[name]}"
        advertised[f"{host}:{port}"] = name
    assert set(kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].replace(":", ",").split(",")[::2]) == set(listeners)
    # every seqrec process reaches the broker through an advertised in-network listener
    for name, service in seqrec_services().items():
        for server in env_of(service)["SEQREC_KAFKA__BOOTSTRAP_SERVERS"].split(","):
            assert server in advertised and not server.startswith("localhost"), f"{name}: {server}"
    # the host port is published and advertised as localhost
    published = {p.split(":")[0] for p in SERVICES["kafka"]["ports"]}
    assert {a.split(":")[1] for a in advertised if a.startswith("localhost:")} <= published
    # one broker: internal topics and ours with one replica
    assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert kafka["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert named_mounts(SERVICES["kafka"]).get(kafka["KAFKA_LOG_DIRS"]) == "kafka-data"


# ---- compose: environment against the code --------------------------------------------------------


def test_every_seqrec_variable_is_one_the_code_reads() -> None:
    names = {n for s in SERVICES.values() for n in env_of(s)}
    names |= {m.group(1) for ins, args in dockerfile_instructions() if ins == "ENV"
              for m in re.finditer(r"(\w+)=", args)}
    assert {n for n in names if n.startswith("SEQREC_")}, "no SEQREC_ variables found at all"
    assert unknown_seqrec_vars(names) == set()
    assert not names & set(DEPRECATED_ENV), "a deprecated name: set the setting's one variable instead"


def test_the_variable_check_catches_misspellings() -> None:
    # pydantic-settings ignores unknown variables (extra="ignore"): a typo would silently do nothing
    assert unknown_seqrec_vars({"SEQREC_SERVING__MODELSTORE", "SEQREC_WEB_PORT", "SEQREC_KAFKA__PARTITIONS"}) == {
        "SEQREC_SERVING__MODELSTORE", "SEQREC_WEB_PORT"}
    assert {"SEQREC_SERVING__MODEL_STORE", "SEQREC_SERVING__MODEL_POLL_S"} <= KNOWN_VARS
    assert "SEQREC_MODEL_STORE" not in KNOWN_VARS, "deprecated: the model store has one name"


@pytest.mark.parametrize("name", sorted(workers()))
def test_worker_environment_is_valid_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = SERVICES[name]
    assert service["command"] == ["worker"], "workers are configured through the environment only"
    env = {k: v for k, v in env_of(service).items() if k.startswith("SEQREC_")}
    settings = settings_from_env(env, monkeypatch)  # raises when a value does not validate
    paths = gen.settings_env_vars()
    for var, raw in env.items():  # each value arrived in its field, converted as pydantic converts it
        value: Any = settings
        model: Any = Settings
        for part in paths[var]:
            value = getattr(value, part)
            annotation = model.model_fields[part].annotation
            model = annotation
        expected = TypeAdapter(annotation).validate_python(raw)
        assert value == expected, f"{var}={raw!r} gave {value!r}"
    assert settings.web.enabled and settings.web.host == "0.0.0.0", "Prometheus scrapes from another container"
    assert settings.serving.model_store is not None, "workers follow the shared model store"
    assert volume_at(service, Path(settings.serving.model_store)) is not None
    assert volume_at(service, settings.store.datadir) is not None, "RocksDB state on a volume survives restarts"


def test_every_worker_has_its_own_datadir_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    datadirs, ports = {}, {}
    for name, service in workers().items():
        settings = settings_from_env(env_of(service), monkeypatch)
        datadirs[name] = volume_at(service, settings.store.datadir)
        ports[name] = settings.web.port
        assert f"{settings.web.port}:{settings.web.port}" in service.get("ports", [])
        probe = " ".join(service["healthcheck"]["test"])
        assert f":{settings.web.port}/ready" in probe, f"{name}: health check on another port"
    assert len(set(datadirs.values())) == len(datadirs), f"shared RocksDB directory: {datadirs}"
    assert len(set(ports.values())) == len(ports), f"web ports clash: {ports}"
    others = {v for n, s in SERVICES.items() if n not in workers() for v in named_mounts(s).values()}
    assert not set(datadirs.values()) & others, "a worker's datadir volume is mounted elsewhere too"


def test_workers_agree_on_group_topics_and_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = set()
    for service in workers().values():
        s = settings_from_env(env_of(service), monkeypatch)
        seen.add((s.app_id, s.kafka.bootstrap_servers, s.kafka.clicks_topic, s.kafka.recommendations_topic,
                  s.kafka.dead_letter_topic, s.kafka.partitions, s.store.standby_replicas))
    assert len(seen) == 1, seen


def test_topics_service_creates_the_topics_the_workers_use(monkeypatch: pytest.MonkeyPatch) -> None:
    topics = SERVICES["topics"]
    script = " ".join(topics["command"]) if isinstance(topics["command"], list) else topics["command"]
    created = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in
               re.finditer(r"--topic (\S+) --partitions (\d+) --replication-factor (\d+)", script)}
    assert "--create --if-not-exists" in script, "idempotent: running it again must not fail"
    s = settings_from_env(env_of(next(iter(workers().values()))), monkeypatch)
    expected = (s.kafka.partitions, s.kafka.replication_factor)
    assert created == {t: expected for t in (s.kafka.clicks_topic, s.kafka.recommendations_topic,
                                            s.kafka.dead_letter_topic)}
    assert "--bootstrap-server kafka:19092" in script
    for name, service in list(workers().items()) + [("retrain", SERVICES["retrain"])]:
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully", name
    assert SERVICES["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_retrain_shares_the_model_store_with_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    retrain = SERVICES["retrain"]
    command = retrain["command"]
    assert command[0] == "retrain"
    options = options_of(command[1:])
    declared = {flag for p in gen.commands()["retrain"].params for flag in p.opts + p.secondary_opts}
    assert set(options) <= declared, f"not options of seqrec retrain: {set(options) - declared}"
    assert float(options["--interval"]) >= 1
    r = settings_from_env(env_of(retrain), monkeypatch)
    store = Path(options.get("--store") or r.serving.store_url())
    store_volume = volume_at(retrain, store)
    assert store_volume is not None, "the retrain job writes its models to a volume"
    for name, service in workers().items():
        s = settings_from_env(env_of(service), monkeypatch)
        assert "--log" not in options and options.get("--topic", r.kafka.clicks_topic) == s.kafka.clicks_topic, \
            "retrain reads the topic the workers serve"
        assert r.kafka.bootstrap_servers == s.kafka.bootstrap_servers
        assert r.store.history_len == s.store.history_len, "the gate keeps histories as the workers do"
        assert volume_at(service, Path(s.serving.model_store)) == store_volume, f"{name} follows another store"
        assert Path(s.serving.model_store) == store, "the same directory inside every container"


def test_prometheus_scrapes_every_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    prometheus = SERVICES["prometheus"]
    mounts = {target: source for source, target, *_ in (v.split(":") for v in prometheus["volumes"])}
    assert (DEPLOY / mounts["/etc/prometheus/prometheus.yml"]).resolve() == DEPLOY / "prometheus.yml"
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = config["scrape_configs"]
    targets = {t for job in jobs for sc in job.get("static_configs", []) for t in sc["targets"]}
    assert all(job.get("metrics_path", "/metrics") == "/metrics" for job in jobs)
    expected = set()
    for name, service in workers().items():
        s = settings_from_env(env_of(service), monkeypatch)
        expected.add(f"{service.get('hostname', name)}:{s.web.port}")
    assert targets == expected


# ---- Dockerfile ------------------------------------------------------------------------------------


def test_dockerfile_installs_with_the_command_ci_runs() -> None:
    pip_lines = install_sh_pip_lines()
    assert len(pip_lines) == 1, pip_lines
    assert "deploy/install.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    runs = [args for ins, args in dockerfile_instructions() if ins == "RUN"]
    assert pip_lines[0] in runs, f"the Dockerfile must RUN exactly: {pip_lines[0]}"
    assert sum("pip install" in r for r in runs) == 1, "one install step, the CI one"


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_test_tools_and_plots_are_extras_that_the_ci_install_pulls_in() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime, extras = _names(project["dependencies"]), project["optional-dependencies"]
    assert not runtime & {"pytest", "pytest-timeout", "testcontainers", "matplotlib", "moto", "s3fs"}, \
        "a worker needs none of them"
    assert _names(extras["report"]) == {"matplotlib"} and _names(extras["docker"]) == {"testcontainers"}
    assert _names(extras["s3"]) == {"s3fs"}
    assert "seqrec[report,docker,s3]" in extras["dev"] and {"pytest", "pytest-timeout", "moto"} <= _names(extras["dev"])
    # The packages the project was asked to use stay dependencies; the test tools come with `dev`.
    assert {"torch", "kafka-python", "faust-streaming", "rocksdict", "numpy"} <= runtime
    assert "'.[dev]'" in install_sh_pip_lines()[0]


def test_dockerfile_copies_what_the_install_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = set(project["tool"]["setuptools"]["package-dir"].values())  # the folders seqrec.* installs from
    needed = {"pyproject.toml", project["project"]["readme"]} | packages
    copied = set()
    instructions = dockerfile_instructions()
    install_at = next(i for i, (ins, args) in enumerate(instructions) if ins == "RUN" and "pip install" in args)
    for ins, args in instructions[:install_at]:
        if ins == "COPY":
            copied |= {Path(src).as_posix().rstrip("/") for src in shlex.split(args)[:-1] if not src.startswith("--")}
    assert needed <= copied, f"not copied before the install: {needed - copied}"


def test_dockerfile_base_cuda_switch_user_and_entrypoint() -> None:
    instructions = dockerfile_instructions()
    args = dict(a.split("=", 1) if "=" in a else (a, "") for ins, a in instructions if ins == "ARG")
    base = next(a for ins, a in instructions if ins == "FROM")
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
    assert base == "python:3.11-slim"
    assert "TORCH_INDEX" in args and "download.pytorch.org/whl/cpu" in args["TORCH_INDEX"]
    assert any(ins == "ENV" and "PIP_EXTRA_INDEX_URL=${TORCH_INDEX}" in a for ins, a in instructions)
    users = [a for ins, a in instructions if ins == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image runs as an unprivileged user"
    last_user = max(i for i, (ins, _) in enumerate(instructions) if ins == "USER")
    assert not any(ins == "RUN" for ins, _ in instructions[last_user:]), "nothing runs as root after USER"
    entry = [a for ins, a in instructions if ins == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["seqrec"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert "seqrec" in scripts


def test_volume_mount_points_exist_in_the_image_for_its_user() -> None:
    setup = " ".join(a for ins, a in dockerfile_instructions() if ins == "RUN")
    for name, service in seqrec_services().items():
        for target in named_mounts(service):
            assert any(target == p or target.startswith(p + "/") for p in re.findall(r"(/var/lib/seqrec\S*)", setup)), \
                f"{name}: {target} is not made (and chowned) in the image, a named volume there is root's"
    assert "chown -R seqrec:seqrec /var/lib/seqrec" in setup


# ---- docs/configuration.md -------------------------------------------------------------------------


def test_configuration_doc_is_generated_from_the_code() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == gen.render(), "docs/configuration.md is stale: run python deploy/gen_config_docs.py"


def test_configuration_doc_lists_every_setting_with_its_options() -> None:
    text = gen.render()
    rows = gen.settings_rows()
    assert len(rows) == len({r.env for r in rows})
    lines = {row.env: next(line for line in text.splitlines() if line.startswith(f"| `{row.env}` |")) for row in rows}
    for path, flags in gen.setting_options().items():
        for flag in flags:
            assert f"`{flag}`" in lines["SEQREC_" + "__".join(path).upper()], flag
    store = gen.setting_options()[("serving", "model_store")]
    assert {"retrain", "models promote", "models rollback"} <= set(store["--store"])
    assert store["--model-store"] == ["worker"]
    for old in DEPRECATED_ENV:
        assert f"| `{old}` |" in text


def test_generator_reads_descriptions_types_and_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "demo_settings.py"
    source.write_text(
        "from pathlib import Path\n"
        "from typing import Literal\n"
        "from pydantic import BaseModel, ConfigDict, Field\n"
        "from pydantic_settings import BaseSettings, SettingsConfigDict\n\n"
        "class Inner(BaseModel):\n"
        "    model_config = ConfigDict(use_attribute_docstrings=True)\n"
        "    size: int = Field(3, ge=1, le=9)\n"
        "    \"\"\"Two lines\n"
        "    of description.\"\"\"\n"
        "    name: str | None = Field(None, description='from Field')\n"
        "    kind: Literal['a', 'b'] = 'a'\n\n"
        "class Outer(BaseSettings):\n"
        "    model_config = SettingsConfigDict(env_prefix='SEQREC_', env_nested_delimiter='__')\n"
        "    where: Path = Path('x')\n"
        "    inner: Inner = Inner()\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import demo_settings  # noqa: PLC0415

    rows = {r.env: r for r in gen.settings_rows(demo_settings.Outer)}
    assert list(rows) == ["SEQREC_WHERE", "SEQREC_INNER__SIZE", "SEQREC_INNER__NAME", "SEQREC_INNER__KIND"]
    size = rows["SEQREC_INNER__SIZE"]
    assert (size.path, size.type, size.default, size.bounds) == (("inner", "size"), "int", 3, "≥ 1, ≤ 9")
    assert size.description == "Two lines of description."
    assert (rows["SEQREC_INNER__NAME"].type, rows["SEQREC_INNER__NAME"].description) == ("str | None", "from Field")
    assert (rows["SEQREC_INNER__KIND"].type, rows["SEQREC_WHERE"].type) == ("a | b", "Path")


def test_installed_packages_live_under_the_seqrec_namespace(tmp_path: Path) -> None:
    """Outside the checkout only `seqrec.*` imports: a user module named `model` or `pipeline`
    cannot collide with ours."""
    def imports(statement: str) -> int:
        return subprocess.run([sys.executable, "-c", statement], cwd=tmp_path, capture_output=True).returncode

    assert imports("import seqrec.model, seqrec.pipeline.cli, seqrec.schemas; seqrec.schemas.validator('click')") == 0
    for generic in ("model", "pipeline", "schemas"):
        assert imports(f"import {generic}") != 0, generic


def test_the_archiver_and_the_retrain_loop_share_the_archive_on_minio(monkeypatch: pytest.MonkeyPatch) -> None:
    archivers = [n for n, s in seqrec_services().items() if s["command"][0] == "archive"]
    assert archivers, "an archiver keeps the clicks beyond the topic's retention"
    users = archivers + ["retrain"]
    urls = {settings_from_env(env_of(SERVICES[n]), monkeypatch).archive.url for n in users}
    assert len(urls) == 1 and next(iter(urls)).startswith("s3://"), urls
    minio_ports = {p.split(":")[1] for p in SERVICES["minio"]["ports"]}
    for name in users:
        env = env_of(SERVICES[name])
        host, port = re.match(r"http://([\w-]+):(\d+)$", env["AWS_ENDPOINT_URL"]).groups()
        assert host == "minio" and port in minio_ports, name
        assert env["AWS_SECRET_ACCESS_KEY"].startswith("${"), f"{name}: a secret is never written in the file"
        assert "buckets" in SERVICES[name]["depends_on"], f"{name} starts before its bucket exists"
    assert "--window" in options_of(SERVICES["retrain"]["command"]), "retrain reads a window, not the whole archive"
