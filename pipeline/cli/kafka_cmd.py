"""`seqrec kafka start|stop|status`: a broker for development, without Docker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from seqrec.pipeline.errors import BrokerError
from seqrec.pipeline.devtools.kafka_local import DEFAULT_LIB_DIR, STATE_FILE, LocalKafka, pid_alive, stop_pid
from seqrec.pipeline.devtools.kafka_provider import BOOTSTRAP_ENV, configured_bootstrap, docker_available, kafka_in_container
from seqrec.pipeline.devtools.local_tls import SecureFiles, client_environment

DEFAULT_DATA_DIR = Path(".seqrec") / "kafka"

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Broker storage; kept between start and stop, so data survives a restart.",
)


@click.group()
def kafka() -> None:
    """Run a Kafka broker for development and demos.

    If SEQREC_KAFKA__BOOTSTRAP_SERVERS is set that cluster is used; else a Docker engine runs Kafka via
    testcontainers; else a local Apache Kafka 4.x broker (KRaft) runs from the Maven jars.
    """


@kafka.command()
@data_dir_option
@click.option("--heap", default="384m", show_default=True, help="JVM heap of the local broker.")
@click.option("--timeout", type=click.FloatRange(min=1), default=90, show_default=True, help="Seconds to wait for readiness.")
@click.option("--lib-dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_LIB_DIR,
              help="The broker's jars (default: the checkout's deploy/kafka/lib); the Java is JAVA_HOME's, else PATH's.")
@click.option("--secure", is_flag=True,
              help="Also listen with SASL_SSL (SCRAM-SHA-512 over TLS, a CA made for this data directory; "
                   "local broker only) and print the client settings for it.")
def start(data_dir: Path, heap: str, timeout: float, lib_dir: Path, secure: bool) -> None:
    """Start a broker and print its bootstrap address (host:port).

    With --secure, the lines after it are `export` lines a client needs for the secured listener:
    the CA file and the password file, never the password itself."""
    external = configured_bootstrap()
    if external:
        click.echo(external)
        click.echo(f"{BOOTSTRAP_ENV} is set: using that cluster, nothing started.", err=True)
        return
    running = _running_state(data_dir)
    if running:
        click.echo(f"127.0.0.1:{running['port']}")
        if running.get("secure_port"):
            _print_client_settings(f"127.0.0.1:{running['secure_port']}", SecureFiles(data_dir / "tls"))
        click.echo(f"already running (pid {running['pid']})", err=True)
        return
    if not secure and docker_available():
        with kafka_in_container() as bootstrap:
            click.echo(bootstrap)
            click.echo("Kafka runs in a container until Ctrl-C.", err=True)
            while True:
                time.sleep(3600)
    broker = LocalKafka(data_dir=data_dir, lib_dir=lib_dir, heap=heap, secure=secure)
    bootstrap = broker.start(timeout=timeout)
    click.echo(bootstrap)
    if broker.state is not None and broker.state.secure_bootstrap:
        _print_client_settings(broker.state.secure_bootstrap, broker.secure_files)
    click.echo(f"local broker pid {broker.process.pid if broker.process else '?'}, data in {data_dir} "
               f"(ready; stop with `seqrec kafka stop`)", err=True)


@kafka.command()
@data_dir_option
@click.option("--timeout", type=click.FloatRange(min=1), default=20, show_default=True, help="Seconds before SIGKILL.")
def stop(data_dir: Path, timeout: float) -> None:
    """Stop the local broker started by `seqrec kafka start` (data is kept)."""
    running = _running_state(data_dir)
    if not running:
        click.echo("no local broker is running", err=True)
        return
    stop_pid(running["pid"], timeout)
    click.echo(f"stopped broker pid {running['pid']}", err=True)


@kafka.command()
@data_dir_option
def status(data_dir: Path) -> None:
    """Say whether the local broker runs, and where."""
    running = _running_state(data_dir)
    if running:
        secure = f", SASL_SSL on 127.0.0.1:{running['secure_port']}" if running.get("secure_port") else ""
        click.echo(f"running: 127.0.0.1:{running['port']}{secure} (pid {running['pid']})")
    else:
        raise BrokerError(f"no local broker is running for {data_dir}")


def _print_client_settings(secure_bootstrap: str, files: SecureFiles) -> None:
    click.echo(f"# SASL_SSL listener {secure_bootstrap}: these settings reach it (the password stays in its file)")
    for name, value in client_environment(secure_bootstrap, files).items():
        click.echo(f"export {name}={value}")


def _running_state(data_dir: Path) -> dict | None:
    path = data_dir / STATE_FILE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    pid = state.get("pid")
    return state if pid and pid_alive(pid) else None
