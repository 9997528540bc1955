"""Private, throwaway PostgreSQL and RabbitMQ servers on loopback for the tests, the
benchmarks and the demo; the machine's own servers (if any) are neither used nor touched.

PostgreSQL: `PostgresCluster` runs initdb and pg_ctl (from /usr/lib/postgresql/*/bin, the
Debian package postgresql) in a temporary folder: trust authentication, listening on
127.0.0.1 on a free port and on a unix socket in that folder, no fsync (the data is thrown
away). initdb refuses to run as root, so under root the server runs as the `postgres`
system user the Debian package creates. It is stopped with `pg_ctl stop -m immediate`.
`private_postgres_database()` creates a database of its own on the process's cluster
(started at first use; stopped by `stop_postgres()` or at exit; the tests' session fixture
`postgres_admin_url` does both) and drops it afterwards.

NADIR_TEST_PG_URL: the libpq URL of a running server whose user may create databases, e.g.
postgresql://postgres@127.0.0.1:5432/postgres. When it is set, the databases are created
there and no cluster is started (a developer's speed-up).

RabbitMQ: `private_rabbitmq()` starts a node of its own (the Debian package rabbitmq-server)
with its own name, AMQP, distribution and port-mapper (epmd) ports, Erlang cookie,
configuration, logs and database in a temporary folder, and no plugins. It yields the
node's AMQP URL once the node answers the AMQP handshake, then stops the node and its epmd.

Each server comes with a `Cleanup`: a shell waiting on a pipe from this process, which stops
the server and removes its folder when told to, or when this process dies in any way (kill -9,
a timeout), so that no server outlives the run that started it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from daemon.demo.peers import free_port, stop_process, wait_until

PG_URL_ENV = "NADIR_TEST_PG_URL"
PG_ROOT = Path("/usr/lib/postgresql")
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")  # the scripts themselves, not Debian's su wrappers
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"  # protocol 0-9-1
CONNECTION_START = b"\x00\x0a\x00\x0a"  # class 10 (connection), method 10 (start)


class ServerError(RuntimeError):
    """A private server could not be started (the message says why)."""


def _tail(path: Path, chars: int = 2000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


class Cleanup:
    """A shell, in a session of its own, that runs `script` once its stdin is closed: by
    `run()`, or by the kernel when this process ends in any way (even kill -9 or a timeout),
    so that no private server outlives the tests that started it."""

    def __init__(self, script: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(["sh", "-c", f"cat >/dev/null; cd /; {script}"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def run(self, timeout_s: float = 120) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout_s)


def postgres_bindir() -> Path:
    """The newest PostgreSQL's server programs under /usr/lib/postgresql/*/bin."""
    def version(pg_ctl: Path) -> tuple[int, ...]:  # /usr/lib/postgresql/15/bin/pg_ctl -> (15,)
        return tuple(int(x) for x in pg_ctl.parts[-3].split(".") if x.isdigit())

    found = sorted(PG_ROOT.glob("*/bin/pg_ctl"), key=version)
    if not found:
        raise ServerError(f"no PostgreSQL server programs in {PG_ROOT}/*/bin: "
                          "install the Debian package postgresql (`make apt`)")
    return found[-1].parent


@dataclass
class PostgresCluster:
    """A cluster in `root` (a folder of its own, removed by `stop()`)."""

    root: Path
    port: int = field(default_factory=free_port)
    bindir: Path = field(default_factory=postgres_bindir)
    cleanup: Cleanup | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresCluster:
        if os.geteuid() == 0:  # the server's own user must own its folder
            try:
                shutil.chown(self.root, "postgres", "postgres")
            except LookupError as e:
                raise ServerError(f"running as root needs the system user postgres ({e})") from e
        stop = self._command("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")
        pid_file = shlex.quote(str(self.data_dir / "postmaster.pid"))
        self.cleanup = Cleanup(f"[ -f {pid_file} ] && {shlex.join(stop)}; "
                               f"rm -rf {shlex.quote(str(self.root))}")
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "-o", options)
        return self

    def stop(self) -> None:
        """pg_ctl stop -m immediate, then the folder goes."""
        if self.cleanup is not None:
            self.cleanup.run()
        shutil.rmtree(self.root, ignore_errors=True)

    def _command(self, program: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / program), *args]
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def _run(self, program: str, *args: str) -> None:
        cmd = self._command(program, *args)
        done = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            said = done.stderr or done.stdout
            raise ServerError(f"{program} exited with {done.returncode}: {said}"
                              f"{_tail(self.root / 'server.log')}")


_cluster: PostgresCluster | None = None


def postgres_admin_url() -> str:
    """The server the databases go to: NADIR_TEST_PG_URL, else the process's private
    cluster, started now when it is not running (raises ServerError when it cannot start)."""
    global _cluster
    if os.environ.get(PG_URL_ENV):
        from sqlalchemy.engine import make_url

        given = make_url(os.environ[PG_URL_ENV]).set(drivername="postgresql")
        return given.render_as_string(hide_password=False)
    if _cluster is None:
        bindir = postgres_bindir()  # before the folder: nothing to clean up when it fails
        cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="nadir-pg-")), bindir=bindir)
        try:
            cluster.start()
        except BaseException:
            cluster.stop()
            raise
        _cluster = cluster
        atexit.register(stop_postgres)
    return _cluster.admin_url


def stop_postgres() -> None:
    """Stop the process's private cluster, if it runs."""
    global _cluster
    if _cluster is not None:
        _cluster.stop()
        _cluster = None


@contextlib.contextmanager
def private_postgres_database(admin_url: str | None = None) -> Iterator[str]:
    """A database of its own on `admin_url`'s server (default: `postgres_admin_url()`),
    dropped afterwards. Yields its SQLAlchemy URL (postgresql+psycopg://...)."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = admin_url or postgres_admin_url()
    name = f"nadir_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(admin).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def amqp_handshake(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """True when the server answers the AMQP 0-9-1 protocol header with Connection.Start."""
    frame = b""
    try:
        with socket.create_connection((host, port), timeout_s) as s:
            s.sendall(AMQP_HEADER)
            while len(frame) < 11:  # type, channel, size, then the method's class and id
                chunk = s.recv(11 - len(frame))
                if not chunk:
                    return False
                frame += chunk
    except OSError:
        return False
    return frame[0] == 1 and frame[7:11] == CONNECTION_START


@dataclass
class RabbitNode:
    """A RabbitMQ node whose every file is in `root` (removed by `stop()`)."""

    root: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    epmd_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    cleanup: Cleanup | None = None

    @property
    def name(self) -> str:
        return f"nadirtest{self.port}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.root),  # its .erlang.cookie
            RABBITMQ_CONF_ENV_FILE=str(self.root / "rabbitmq-env.conf"),  # not /etc/rabbitmq's
            RABBITMQ_CONFIG_FILE=str(self.root / "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.root / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.root / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(self.root / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.root / "log"),
            RABBITMQ_PID_FILE=str(self.root / "rabbitmq.pid"),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def start(self, deadline_s: float = 120) -> RabbitNode:
        server = RABBITMQ_BIN / "rabbitmq-server"
        if not server.exists():
            raise ServerError(f"no {server}: install the Debian package rabbitmq-server "
                              "(`make apt`)")
        cookie = self.root / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        (self.root / "rabbitmq-env.conf").write_text("")
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            "disk_free_limit.absolute = 1MB\n"
        )
        with open(self.root / "server.log", "ab") as log:
            self.proc = subprocess.Popen([str(server)], cwd=self.root, env=self.env(), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        ctl = shlex.join([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, "stop"])
        self.cleanup = Cleanup(  # the node, anything left in its process group, its epmd, its files
            f"timeout 60 {ctl}; kill -KILL -{self.proc.pid}; epmd -port {self.epmd_port} -kill; "
            f"rm -rf {shlex.quote(str(self.root))}", env=self.env())
        try:
            wait_until(f"RabbitMQ to answer AMQP on port {self.port}", self._ready, deadline_s,
                       0.25)
        except TimeoutError as e:
            raise ServerError(f"{e}: {_tail(self.root / 'server.log')}") from e
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise ServerError(f"rabbitmq-server exited with {self.proc.returncode}: "
                              f"{_tail(self.root / 'server.log')}")
        return amqp_handshake("127.0.0.1", self.port)

    def stop(self) -> None:
        """rabbitmqctl stop, then its process group is killed; its epmd and folder go too."""
        if self.cleanup is not None:
            self.cleanup.run()
        stop_process(self.proc, 20)  # reaps it (already stopped unless the clean-up timed out)
        self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_rabbitmq(deadline_s: float = 120) -> Iterator[str]:
    """A RabbitMQ node of its own, stopped afterwards. Yields its AMQP URL (user guest)."""
    node = RabbitNode(Path(tempfile.mkdtemp(prefix="nadir-rabbitmq-")))
    try:
        node.start(deadline_s)
        yield node.url
    finally:
        node.stop()
