"""A real Apache Kafka 4.x broker on this machine, from the jars in deploy/kafka/lib.

KRaft combined mode (one process is broker and controller). The storage directory is formatted
with `kafka.tools.StorageTool format --standalone`, then `kafka.Kafka` runs on free loopback
ports. The ports and the cluster id are kept in the data directory, so a broker stopped and
started again on the same directory comes back on the same address with all its data.

With `secure=True` the broker also has a SASL_SSL listener (SCRAM-SHA-512 over TLS) beside the
PLAINTEXT one: its CA, certificate and client password are made on first start (pipeline.devtools.local_tls)
and the SCRAM user is created when the storage is formatted.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from seqrec.pipeline.errors import BrokerError
from seqrec.pipeline.devtools.local_tls import MECHANISM, USERNAME, SecureFiles, create_secure_files, secure_listener_properties

log = logging.getLogger(__name__)

DEFAULT_LIB_DIR = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "lib"  # the checkout's deploy/
STATE_FILE = "seqrec-broker.json"  # ports, cluster id and pid, inside the data directory
INSTALL_HINT = "run the README's install command (it fetches the broker jars with Maven)"

# Settings for one node on a 2-core machine; see ../shared/notes/KAFKA_FROM_MAVEN.md §3.
_SINGLE_NODE_SETTINGS = {
    "process.roles": "broker,controller",
    "node.id": "1",
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "share.coordinator.state.topic.num.partitions": "1",
    "group.initial.rebalance.delay.ms": "0",  # default 3 s delays every first consumer group join
    "num.partitions": "1",
    "num.network.threads": "2",
    "num.io.threads": "2",
    "log.cleaner.dedupe.buffer.size": "2097152",  # default 128 MiB is far more than one node needs
    "controlled.shutdown.enable": "false",  # nobody else to hand leadership to
    "auto.create.topics.enable": "true",
}

_LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.file.ref = FILE
"""


@dataclass
class BrokerState:
    cluster_id: str
    port: int
    controller_port: int
    pid: int | None = None
    secure_port: int | None = None  # the SASL_SSL listener, when started with secure=True

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secure_bootstrap(self) -> str | None:
        return f"127.0.0.1:{self.secure_port}" if self.secure_port else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a listener could bind 127.0.0.1:`port` now. With SO_REUSEADDR, as the broker's
    own listener (Java) binds: the connections a stopped broker leaves in TIME_WAIT do not
    hold the port, only a socket that listens on it does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


_TCP_LISTEN = "0A"  # the state column of /proc/net/tcp


def listening_inodes(port: int, tables: tuple[str, ...] = ("/proc/net/tcp", "/proc/net/tcp6")) -> set[str]:
    """Socket inodes listening on `port` (any address), from the kernel's TCP tables (Linux)."""
    inodes = set()
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            if len(fields) > 9 and fields[3] == _TCP_LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_holder(port: int) -> str | None:
    """'pid N (command line)' of the process listening on `port`, or None when no process
    visible here listens on it (another user's, or none). Reads /proc: no extra tools needed."""
    sockets = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    if not sockets:
        return None
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            held = any(os.readlink(fd_dir / fd) in sockets for fd in os.listdir(fd_dir))
        except OSError:  # the process ended, or is not ours to look into
            continue
        if held:
            pid = fd_dir.parent.name
            try:
                command = (fd_dir.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                command = "?"
            return f"pid {pid} ({command.strip()[:200]})"
    return None


def new_cluster_id() -> str:
    """Kafka's Uuid.randomUuid text form: 16 random bytes, URL-safe base64, no padding, no leading '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate and candidate.exists():
        return str(candidate)
    found = shutil.which("java")
    if not found:
        raise BrokerError("Java 17+ is needed to run the local Kafka broker and none was found on PATH or in JAVA_HOME")
    return found


class LocalKafka:
    """Start and stop one local Kafka broker.

    data_dir: kept between runs when given (restart on the same data); a fresh temporary
    directory otherwise, removed by `stop(remove_data=True)`.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        lib_dir: str | Path = DEFAULT_LIB_DIR,
        heap: str = "384m",
        log_level: str = "WARN",
        secure: bool = False,
    ) -> None:
        self._owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="seqrec-kafka-"))
        self.lib_dir = Path(lib_dir)
        self.heap = heap
        self.log_level = log_level
        self.secure = secure
        self.process: subprocess.Popen[bytes] | None = None
        self.state: BrokerState | None = None

    # -- paths ---------------------------------------------------------------------------
    @property
    def log_dir(self) -> Path:
        return self.data_dir / "kraft-logs"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def secure_files(self) -> SecureFiles:
        return SecureFiles(self.data_dir / "tls")

    @property
    def bootstrap_servers(self) -> str:
        if self.state is None:
            raise BrokerError("the broker has not been started")
        return self.state.bootstrap

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> str:
        """Format the storage on first use, start the JVM and wait until the broker answers."""
        jars = sorted(self.lib_dir.glob("*.jar")) if self.lib_dir.is_dir() else []
        if not any(j.name.startswith("kafka_2.13-") for j in jars):
            raise BrokerError(f"no Kafka broker jars in {self.lib_dir}: {INSTALL_HINT}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.state = self._load_or_create_state()
        if self.secure:
            self._prepare_secure_listener(self.state)
        config = self._write_config(self.state)
        if not (self.log_dir / "meta.properties").exists():
            self._format(config, self.state.cluster_id)
        cmd = [
            java_executable(),
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp",
            str(self.lib_dir / "*"),  # java expands the wildcard, not the shell
            "kafka.Kafka",
            str(config),
        ]
        stdout = open(self.data_dir / "stdout.log", "ab")
        # A new session, so Ctrl-C in a terminal running `seqrec kafka start` does not reach the JVM.
        self.process = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True)
        stdout.close()
        self.state.pid = self.process.pid
        self._save_state(self.state)
        try:
            wait_until_ready(self.state.bootstrap, timeout, self.process)
        except BrokerError:
            self.stop()
            raise
        log.info("Kafka broker ready at %s (pid %d, data %s)", self.state.bootstrap, self.process.pid, self.data_dir)
        return self.state.bootstrap

    def stop(self, timeout: float = 20.0, remove_data: bool = False) -> None:
        """SIGTERM (Kafka's shutdown hook closes the logs cleanly), then SIGKILL after `timeout`."""
        if self.process is not None:
            stop_pid(self.process.pid, timeout, popen=self.process)
            self.process = None
        if self.state is not None:
            self.state.pid = None
            self._save_state(self.state)
        if remove_data or self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "LocalKafka":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------
    def _load_or_create_state(self) -> BrokerState:
        path = self.data_dir / STATE_FILE
        if path.exists():
            saved = json.loads(path.read_text())
            state = BrokerState(saved["cluster_id"], saved["port"], saved["controller_port"],
                                secure_port=saved.get("secure_port"))
            busy = [port for port in (state.port, state.controller_port) if not port_is_free(port)]
            if not busy:
                return state
            # The KRaft log remembers the controller's address, so a moved controller port needs a
            # fresh format; refuse rather than silently lose the data.
            holders = "; ".join(f"{port}: {port_holder(port) or 'a process not visible here'}" for port in busy)
            raise BrokerError(
                f"ports {'/'.join(map(str, busy))} recorded in {path} are in use ({holders}): "
                "is a broker already running on this data directory? (`seqrec kafka stop`)"
            )
        return BrokerState(new_cluster_id(), free_port(), free_port())

    def _save_state(self, state: BrokerState) -> None:
        tmp = self.data_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state.__dict__))
        os.replace(tmp, self.data_dir / STATE_FILE)

    def _prepare_secure_listener(self, state: BrokerState) -> None:
        """Give the state a secure port and the data directory its TLS files and password, once."""
        formatted = (self.log_dir / "meta.properties").exists()
        if state.secure_port is None:
            if formatted:  # SCRAM users are created at format time; this storage has none
                raise BrokerError(f"{self.data_dir} was formatted without --secure: use a new data directory")
            state.secure_port = free_port()
        elif not port_is_free(state.secure_port):
            raise BrokerError(f"secure port {state.secure_port} recorded in {self.data_dir / STATE_FILE} is in use")
        if not self.secure_files.exists():
            if formatted:
                raise BrokerError(f"the TLS files in {self.secure_files.root} are missing: use a new data directory")
            create_secure_files(self.secure_files.root)

    def _write_config(self, state: BrokerState) -> Path:
        props = dict(_SINGLE_NODE_SETTINGS)
        listeners = f"PLAINTEXT://127.0.0.1:{state.port},CONTROLLER://127.0.0.1:{state.controller_port}"
        if state.secure_port:
            listeners += f",SASL_SSL://127.0.0.1:{state.secure_port}"
            props["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
            props.update(secure_listener_properties(self.secure_files))
        props.update(
            {
                "listeners": listeners,
                "advertised.listeners": listeners,
                "controller.quorum.bootstrap.servers": f"127.0.0.1:{state.controller_port}",
                "log.dirs": str(self.log_dir),
            }
        )
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2.format(log_file=self.log_file, level=self.log_level))
        return path

    def _format(self, config: Path, cluster_id: str) -> None:
        args = ["-Xmx256m", "-cp", str(self.lib_dir / "*"), "kafka.tools.StorageTool",
                "format", "--standalone", "-t", cluster_id, "-c", str(config)]
        if self.secure:
            scram = f"{MECHANISM}=[name={USERNAME},password={self.secure_files.password()}]"
            args += ["--add-scram", scram]
        # The arguments go through a 0600 @argfile that java expands: the password is not in `ps`.
        argfile = self.data_dir / "format.args"
        fd = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("".join(f'"{a}"\n' for a in args))
        try:
            result = subprocess.run([java_executable(), f"@{argfile}"], capture_output=True, text=True, timeout=120)
        finally:
            argfile.unlink()
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise BrokerError(f"formatting {self.log_dir} failed: {detail[-1] if detail else 'no output'}")


def wait_until_ready(bootstrap: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait for the port to open, then until the broker answers a metadata request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    host, port = bootstrap.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    # kafka-python logs every refused connection at ERROR; while we poll, those are expected.
    kafka_logger = logging.getLogger("kafka")
    previous_level = kafka_logger.level
    kafka_logger.setLevel(logging.CRITICAL)
    try:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise BrokerError(f"the broker exited with code {process.returncode} while starting; see its server.log")
            try:
                with socket.create_connection((host, int(port)), timeout=1):
                    pass
                admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
                try:
                    if admin.describe_cluster().get("brokers"):
                        return
                finally:
                    admin.close()
            except (KafkaError, OSError) as exc:
                last_error = exc
            time.sleep(0.2)
    finally:
        kafka_logger.setLevel(previous_level)
    raise BrokerError(f"no broker answered at {bootstrap} within {timeout:.0f} s (last error: {last_error})")


def stop_pid(pid: int, timeout: float, popen: subprocess.Popen[bytes] | None = None) -> None:
    """Terminate a process gracefully, killing it if it outlives `timeout`."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen is not None:
            if popen.poll() is not None:
                return
        elif not pid_alive(pid):
            return
        time.sleep(0.2)
    log.warning("broker pid %d ignored SIGTERM for %.0f s; killing it", pid, timeout)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if popen is not None:
        popen.wait(10)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); /proc tells the truth on Linux.
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        return "State:\tZ" not in status.read_text()
    return True
