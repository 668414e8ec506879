#!/usr/bin/env python3
"""Start PostgreSQL and Redis on loopback, run a command against them, then stop them."""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = REPO_ROOT / ".local"
# `run` writes the URLs of the servers it started here, for `manage.py` in other shells
# (auction_site/settings/base.py reads it), and removes it when it stops them.
RUN_ENV_FILE = REPO_ROOT / ".run" / "env"

DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 60

APP_DB = "auction"
APP_USER = "auction"
ADMIN_USER = "postgres"

COMMON_PG_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "max_connections": "200",
    "password_encryption": "'scram-sha-256'",
}
# The database's own statistics, for the benchmark's per-scenario statement report.
STATISTICS_PG_SETTINGS = {"shared_preload_libraries": "'pg_stat_statements'"}
# Durability is pointless for a throwaway test database; speed is not. `--durable` keeps
# PostgreSQL's defaults instead (every commit waits for its WAL flush), as a deployment
# runs it: the benchmark measures bids that way.
FAST_PG_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class StackError(Exception):
    """A server could not be set up; the message says why."""


class Terminated(Exception):
    """SIGTERM or SIGHUP arrived while no command was running."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def log(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last lines of {path} ---\n{tail}\n---"


# --- ports -----------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def choose_port(env_var: str, default: int) -> int:
    """The port from env_var (or the default), or a free one if that is taken."""
    wanted = int(os.environ.get(env_var) or default)
    if port_is_free(wanted):
        return wanted
    port = free_port()
    log(f"port {wanted} is in use by something else; using {port} instead")
    return port


# --- processes -------------------------------------------------------------


def process_is_running(pid: int, name: str) -> bool:
    """True if pid is a live (not zombie) process whose command name is name."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    command = stat[stat.index("(") + 1 : stat.rindex(")")]
    state = stat[stat.rindex(")") + 2]
    return command == name and state != "Z"


def wait_for_exit(pid: int, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process_is_running(pid, name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def stop_child(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a child to exit, then terminate it, then kill it."""
    for action in (None, process.terminate, process.kill):
        if action is not None:
            action()
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def read_or_create_secret(path: Path) -> str:
    """A random password kept in path (mode 0600), made on first use."""
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_hex(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return secret


# --- PostgreSQL ------------------------------------------------------------


def find_pg_bin_dir() -> Path:
    if os.environ.get("PG_BIN_DIR"):
        return Path(os.environ["PG_BIN_DIR"])
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise StackError("PostgreSQL server binaries (initdb) not found; run scripts/bootstrap first")


def postgres_account() -> pwd.struct_passwd | None:
    """The OS account to run PostgreSQL as: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise StackError(
            "running as root, but there is no `postgres` user to run PostgreSQL as; "
            "install the `postgresql` package or run as a normal user"
        ) from None


@dataclass
class Postgres:
    """One PostgreSQL cluster in root/data, logging to root/postgres.log."""

    bin_dir: Path
    root: Path
    port: int = 0
    settings: dict[str, str] = field(default_factory=dict)
    superuser: str = ADMIN_USER
    superuser_password: str | None = None
    account: pwd.struct_passwd | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def url(self, user: str, password: str | None, database: str) -> str:
        credentials = f"{user}:{password}" if password else user
        return f"postgres://{credentials}@127.0.0.1:{self.port}/{database}"

    def _as_account(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        """Run command as the server's account, capturing its output."""
        if self.account is not None:
            command = ["runuser", "-u", self.account.pw_name, "--", *command]
        return subprocess.run(
            command,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )

    def _run_server_tool(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self._as_account([str(self.bin_dir / program), *args])

    def prepare_root(self) -> None:
        """Create root and hand it to the server's account."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        if self.account is None:
            return
        for path in [self.root, *self.root.rglob("*")]:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)
        if self._as_account(["test", "-w", str(self.root)]).returncode != 0:
            raise StackError(
                f"user {self.account.pw_name} cannot reach {self.root}: make its parent "
                "folders traversable (chmod o+x) or move the checkout"
            )

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def initialize(self, auth: str, password_file: Path | None = None) -> None:
        log(f"initializing PostgreSQL in {self.data_dir}")
        args = [
            f"--pgdata={self.data_dir}",
            f"--username={self.superuser}",
            f"--auth={auth}",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            "--no-instructions",
        ]
        if password_file is not None:
            args.append(f"--pwfile={password_file}")
        result = self._run_server_tool("initdb", *args)
        if result.returncode != 0:
            raise StackError(f"initdb failed:\n{result.stdout}{result.stderr}")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'stack.conf'\n")

    def is_running(self) -> bool:
        return self._run_server_tool("pg_ctl", "status", "-D", str(self.data_dir)).returncode == 0

    def running_port(self) -> int:
        """The port of the running server, from line 4 of postmaster.pid."""
        lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        return int(lines[3])

    def _write_settings(self) -> None:
        settings = {**COMMON_PG_SETTINGS, "port": str(self.port), **self.settings}
        conf = self.data_dir / "stack.conf"
        conf.write_text("".join(f"{name} = {value}\n" for name, value in settings.items()))
        if self.account is not None:
            os.chown(conf, self.account.pw_uid, self.account.pw_gid)

    def start(self) -> None:
        log(f"starting PostgreSQL on 127.0.0.1:{self.port}")
        self._write_settings()
        result = self._run_server_tool(
            "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file),
            "-w", "-t", str(int(READY_TIMEOUT)), "-s",
        )  # fmt: skip
        if result.returncode != 0:
            raise StackError(f"PostgreSQL did not start:\n{result.stderr}{log_tail(self.log_file)}")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        pg_isready = [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1"]
        while subprocess.run([*pg_isready, "-p", str(self.port), "-t", "2"]).returncode != 0:
            if time.monotonic() > deadline:
                raise StackError(
                    f"PostgreSQL on port {self.port} not ready after {READY_TIMEOUT:.0f}s\n"
                    f"{log_tail(self.log_file)}"
                )
            time.sleep(0.2)

    def query(self, sql: str, database: str = "postgres") -> str:
        """Run sql as the superuser over TCP and return its unaligned output."""
        env = dict(os.environ, PGCONNECT_TIMEOUT="10")
        if self.superuser_password:
            env["PGPASSWORD"] = self.superuser_password
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"), "-X", "-q", "-t", "-A",
                "-v", "ON_ERROR_STOP=1",
                "-h", "127.0.0.1", "-p", str(self.port),
                "-U", self.superuser, "-d", database,
                "-c", sql,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise StackError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def stop(self) -> None:
        if not self.data_dir.exists() or not self.is_running():
            return
        log("stopping PostgreSQL")
        for mode in ("fast", "immediate"):
            result = self._run_server_tool(
                "pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode,
                "-w", "-t", str(STOP_TIMEOUT), "-s",
            )  # fmt: skip
            if result.returncode == 0:
                return
            log(f"pg_ctl stop -m {mode} failed: {result.stderr.strip()}")


# --- Redis -----------------------------------------------------------------


def find_redis_server() -> str:
    server = os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server")
    if server is None and Path("/usr/bin/redis-server").exists():
        server = "/usr/bin/redis-server"
    if server is None:
        raise StackError("redis-server not found; run scripts/bootstrap first")
    return server


@dataclass
class Redis:
    """One redis-server with its config, pid file, log and data in directory."""

    server: str
    directory: Path
    port: int = 0
    persistent: bool = True
    process: subprocess.Popen[bytes] | None = None

    @property
    def conf_file(self) -> Path:
        return self.directory / "redis.conf"

    @property
    def pid_file(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def running_pid(self) -> int | None:
        """The pid in the pid file, if that process is a live redis-server."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if process_is_running(pid, "redis-server") else None

    def configured_port(self) -> int:
        for line in self.conf_file.read_text().splitlines():
            if line.startswith("port "):
                return int(line.split()[1])
        raise StackError(f"no port in {self.conf_file}")

    def _write_config(self) -> None:
        lines = [
            "bind 127.0.0.1",
            "protected-mode yes",
            f"port {self.port}",
            f'dir "{self.directory}"',
            f'pidfile "{self.pid_file}"',
            "daemonize no",
            "appendonly no",
        ]
        if not self.persistent:
            lines.append('save ""')
        self.conf_file.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        log(f"starting Redis on 127.0.0.1:{self.port}")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._write_config()
        with self.log_file.open("ab") as log_output:
            # A session of its own, so a Ctrl-C at the terminal reaches the command only.
            self.process = subprocess.Popen(
                [self.server, str(self.conf_file)],
                stdin=subprocess.DEVNULL,
                stdout=log_output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def send(self, command: str) -> bytes:
        """Send one inline command and return the first reply bytes (b'' if none)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(command.encode() + b"\r\n")
            return sock.recv(64)

    def ping(self) -> bool:
        try:
            return self.send("PING").startswith(b"+PONG")
        except OSError:
            return False

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ping():
            exited = self.process is not None and self.process.poll() is not None
            if exited or time.monotonic() > deadline:
                reason = "exited" if exited else f"not ready after {READY_TIMEOUT:.0f}s"
                raise StackError(f"Redis on port {self.port} {reason}\n{log_tail(self.log_file)}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Shut down whatever Redis answers on our port, then make sure ours has exited."""
        pid = self.running_pid()
        if self.ping():
            log("stopping Redis")
            with contextlib.suppress(OSError):
                self.send("SHUTDOWN")  # saves first when persistent
        if self.process is not None:
            stop_child(self.process, STOP_TIMEOUT)
        if pid is not None and not wait_for_exit(pid, "redis-server", STOP_TIMEOUT):
            os.kill(pid, signal.SIGKILL)


# --- running the command -----------------------------------------------------


def raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def catch_termination() -> None:
    """Make SIGTERM and SIGHUP unwind the stack, so that servers are always stopped."""
    signal.signal(signal.SIGTERM, raise_terminated)
    signal.signal(signal.SIGHUP, raise_terminated)


def ignore_signals() -> None:
    """Keep teardown from being interrupted half-way."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)


def run_command(command: list[str], env: dict[str, str]) -> int:
    """Run command; return its exit status (128+N if killed by signal N)."""
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as error:
        log(f"cannot run {command[0]}: {error}")
        return 127

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    # Ctrl-C at a terminal already reaches the child (same process group), so
    # SIGINT is not forwarded; SIGTERM and SIGHUP are.
    signal.signal(signal.SIGINT, lambda _signum, _frame: None)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGHUP, forward)
    returncode = child.wait()
    return 128 - returncode if returncode < 0 else returncode


def has_database_url(env: dict[str, str]) -> bool:
    return bool(env.get("DATABASE_URL") or env.get("DB_URL"))


def has_redis_url(env: dict[str, str]) -> bool:
    return bool(env.get("REDIS_URL") or env.get("REDIS_ADDR"))


def export_servers(env: dict[str, str], pg: Postgres | None, redis: Redis | None) -> None:
    """Tell the command where the servers and their tools are."""
    if pg is not None:
        env["PG_BIN_DIR"] = str(pg.bin_dir)
        env["STACK_PG_DATA"] = str(pg.data_dir)
        env["STACK_PG_PORT"] = str(pg.port)
        env["STACK_PG_OS_USER"] = pg.account.pw_name if pg.account else ""
    if redis is not None:
        env["REDIS_SERVER_BIN"] = redis.server
        env["STACK_REDIS_PORT"] = str(redis.port)
        env["STACK_REDIS_CONF"] = str(redis.conf_file)


def start_persistent_postgres(cleanup: contextlib.ExitStack) -> tuple[Postgres, bool]:
    """The server in .local/postgres, and whether this invocation started it."""
    root = LOCAL_DIR / "postgres"
    password_file = root / "superuser-password"
    pg = Postgres(bin_dir=find_pg_bin_dir(), root=root, account=postgres_account())
    if pg.is_initialized() and not password_file.exists():
        raise StackError(f"{password_file} is missing; delete {root} to start over")
    pg.superuser_password = read_or_create_secret(password_file)
    pg.prepare_root()
    if not pg.is_initialized():
        pg.initialize(auth="scram-sha-256", password_file=password_file)
    # A server another `stack.py run` started (the running service, say) is used and left
    # running: only the invocation that started a server stops it.
    started = not pg.is_running()
    if started:
        pg.port = choose_port("PG_PORT", DEFAULT_PG_PORT)
        cleanup.callback(pg.stop)
        pg.start()
    else:
        pg.port = pg.running_port()
        log(f"PostgreSQL is already running on port {pg.port}; using it")
    pg.wait_ready()
    return pg, started


def ensure_app_database(pg: Postgres, password: str) -> None:
    """Create (or update) the login role and its database."""
    role_exists = pg.query(f"SELECT 1 FROM pg_roles WHERE rolname = '{APP_USER}'")
    verb = "ALTER" if role_exists else "CREATE"
    pg.query(f"{verb} ROLE {APP_USER} LOGIN PASSWORD '{password}'")
    if not pg.query(f"SELECT 1 FROM pg_database WHERE datname = '{APP_DB}'"):
        pg.query(f"CREATE DATABASE {APP_DB} OWNER {APP_USER}")


def start_persistent_redis(cleanup: contextlib.ExitStack) -> tuple[Redis, bool]:
    """The server in .local/redis, and whether this invocation started it."""
    redis = Redis(server=find_redis_server(), directory=LOCAL_DIR / "redis", persistent=True)
    started = redis.running_pid() is None
    if started:
        redis.port = choose_port("REDIS_PORT", DEFAULT_REDIS_PORT)
        cleanup.callback(redis.stop)
        redis.start()
    else:
        redis.port = redis.configured_port()
        log(f"Redis is already running on port {redis.port}; using it")
    redis.wait_ready()
    return redis, started


# --- the state file ----------------------------------------------------------


def run_env_owner(path: Path) -> int | None:
    """The pid of the `stack.py run` that wrote the state file, if it is still running."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition("=")
        if name == "STACK_RUN_PID" and value.strip().isdigit():
            pid = int(value)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
            return pid
    return None


def write_run_env(path: Path, urls: dict[str, str]) -> None:
    """Record the servers' URLs (mode 0600: the database password is in one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# The servers `scripts/stack.py run` started, for manage.py in other shells.",
        "# Removed when it stops them; ignored once its process is gone. Do not edit.",
        f"STACK_RUN_PID={os.getpid()}",
        *(f"{name}={url}" for name, url in urls.items()),
    ]
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write("\n".join(lines) + "\n")
    os.replace(temporary, path)


def remove_run_env(path: Path) -> None:
    """Remove the state file, unless another invocation has written it since."""
    if run_env_owner(path) == os.getpid():
        path.unlink(missing_ok=True)


def publish_run_env(cleanup: contextlib.ExitStack, urls: dict[str, str], started: bool) -> None:
    """Write the state file when this invocation started a server (or its writer is gone);
    it is removed before the servers stop (the cleanup stack runs last-in, first-out)."""
    if not urls:
        return
    if started or run_env_owner(RUN_ENV_FILE) is None:
        write_run_env(RUN_ENV_FILE, urls)
        cleanup.callback(remove_run_env, RUN_ENV_FILE)


def run_mode(command: list[str], cleanup: contextlib.ExitStack) -> int:
    """Persistent servers under .local/, unless the environment already names one."""
    env = dict(os.environ)
    pg = redis = None
    urls: dict[str, str] = {}
    pg_started = redis_started = False
    if has_database_url(env):
        log("DATABASE_URL/DB_URL is set; not starting PostgreSQL")
    else:
        pg, pg_started = start_persistent_postgres(cleanup)
        password = read_or_create_secret(LOCAL_DIR / "auction-db-password")
        ensure_app_database(pg, password)
        env["DATABASE_URL"] = urls["DATABASE_URL"] = pg.url(APP_USER, password, APP_DB)
    if has_redis_url(env):
        log("REDIS_URL/REDIS_ADDR is set; not starting Redis")
    else:
        redis, redis_started = start_persistent_redis(cleanup)
        env["REDIS_URL"] = urls["REDIS_URL"] = redis.url
    publish_run_env(cleanup, urls, started=pg_started or redis_started)
    export_servers(env, pg, redis)
    metrics_directory(env, REPO_ROOT / ".run" / "metrics")
    return run_command(command, env)


def metrics_directory(env: dict[str, str], path: Path) -> None:
    """Where every process started here keeps its Prometheus metrics, so that /metrics adds
    them up (prometheus_client's multiprocess mode); emptied first, as that mode asks."""
    if env.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def test_mode(command: list[str], cleanup: contextlib.ExitStack, durable: bool = False) -> int:
    """Throwaway servers in a temporary folder, on free ports."""
    temp_dir = Path(tempfile.mkdtemp(prefix="auction-stack-"))
    cleanup.callback(shutil.rmtree, temp_dir, ignore_errors=True)
    temp_dir.chmod(0o711)  # lets the postgres account reach its folder when we are root

    pg = Postgres(
        bin_dir=find_pg_bin_dir(),
        root=temp_dir / "postgres",
        port=free_port(),
        settings={**STATISTICS_PG_SETTINGS, **({} if durable else FAST_PG_SETTINGS)},
        superuser=APP_USER,
        account=postgres_account(),
    )
    pg.prepare_root()
    # Trust is acceptable here: the server is throwaway and listens on 127.0.0.1 only.
    pg.initialize(auth="trust")
    cleanup.callback(pg.stop)
    pg.start()
    pg.wait_ready()
    pg.query(f"CREATE DATABASE {APP_DB}")

    redis = Redis(
        server=find_redis_server(), directory=temp_dir / "redis", port=free_port(), persistent=False
    )
    cleanup.callback(redis.stop)
    redis.start()
    redis.wait_ready()

    env = dict(os.environ)
    for alias in ("DB_URL", "REDIS_ADDR", "REDIS_PASSWORD", "REDIS_DB"):
        env.pop(alias, None)
    env["DATABASE_URL"] = pg.url(APP_USER, None, APP_DB)
    env["REDIS_URL"] = redis.url
    export_servers(env, pg, redis)
    metrics_directory(env, temp_dir / "metrics")
    return run_command(command, env)


MODES = {"run": run_mode, "test": test_mode}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__,
        usage="%(prog)s [--durable] {run,test} -- COMMAND [ARG...]",
        epilog="run: persistent servers in .local/ (PG_PORT, REDIS_PORT; an existing "
        "DATABASE_URL/REDIS_URL is used instead), their URLs in .run/env while it runs. "
        "test: throwaway servers in a temp folder, "
        "PostgreSQL without fsync unless --durable.",
    )
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument(
        "--durable", action="store_true", help="test: keep PostgreSQL's durable defaults"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    args.command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not args.command:
        parser.error("no command given after --")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    catch_termination()
    cleanup = contextlib.ExitStack()
    try:
        if args.mode == "test":
            return test_mode(args.command, cleanup, durable=args.durable)
        return run_mode(args.command, cleanup)
    except StackError as error:
        log(f"error: {error}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Terminated as terminated:
        log(f"terminated by {terminated}")
        return 128 + terminated.signum
    finally:
        ignore_signals()
        cleanup.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
