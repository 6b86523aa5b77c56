"""A three-node RabbitMQ cluster on this machine, for chaos tests and bench.

Each node is an extra RabbitMQ (the machine's own `rabbit@localhost` on 5672 is never
touched): its own node name, AMQP and distribution ports, config, plugins file (none: no
management listener) and data folder under a temporary directory, run as the `rabbitmq`
user so that all share its Erlang cookie. Killing a node is `kill -9` of that node's Erlang
VM only, found by its node name.

    with RabbitCluster.start(tmp_path) as cluster:
        cluster.urls          # amqp://guest:guest@127.0.0.1:<port>/ per node
        cluster.kill(1); cluster.restart(1)
        cluster.stop_app(2); cluster.start_app(2)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.storage.testing import free_port

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
USER = "rabbitmq"


def available() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        return "rabbitmq-server is not installed"
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return "starting extra RabbitMQ nodes needs root (to run them as the rabbitmq user)"
    return None


@dataclass
class Node:
    name: str  # guahao-c<tag>-<n>@localhost
    port: int
    dist_port: int
    home: Path

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"


class RabbitCluster:
    """Three nodes joined into one cluster; start with `RabbitCluster.start(base)`."""

    def __init__(self, base: Path, size: int = 3) -> None:
        self.base = base
        tag = uuid.uuid4().hex[:6]
        self.nodes = [
            Node(f"guahao-c{tag}-{i + 1}@localhost", free_port(), free_port(), base / f"n{i + 1}")
            for i in range(size)
        ]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def amqp_urls(self) -> str:
        """The value of AMQP_URLS for processes using this cluster."""
        return ",".join(self.urls)

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    @contextmanager
    def start(cls, base: Path | None = None, size: int = 3) -> Iterator[RabbitCluster]:
        """Start, join and yield a cluster; every node is torn down afterwards. `base` must
        be reachable by the rabbitmq user (pytest's tmp_path is not): by default a new
        temporary folder, removed afterwards."""
        owned = base is None
        root = Path(tempfile.mkdtemp(prefix="guahao-cluster-")) if base is None else base
        cluster = cls(root, size)
        try:
            cluster.boot()
            yield cluster
        finally:
            cluster.teardown()
            if owned:
                shutil.rmtree(root, ignore_errors=True)

    def boot(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.base, USER, USER)
        for i, node in enumerate(self.nodes):
            self._prepare(node)
            self._launch(i)
        for i in range(len(self.nodes)):
            self.wait_running(i)
        first = self.nodes[0].name
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first)
            self.ctl(node, "start_app")
        for i in range(len(self.nodes)):
            self.wait_running(i)

    def _prepare(self, node: Node) -> None:
        for sub in ("mnesia", "log"):
            (node.home / sub).mkdir(parents=True, exist_ok=True)
        (node.home / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{node.port}\n"
            "loopback_users.guest = true\n"
            # a killed node must not leave its queues' leaders waiting long for it
            "cluster_partition_handling = ignore\n"
        )
        (node.home / "enabled_plugins").write_text("[].\n")
        (node.home / "rabbitmq-env.conf").write_text("")
        for path in node.home.rglob("*"):
            shutil.chown(path, USER, USER)
        shutil.chown(node.home, USER, USER)

    def _env(self, node: Node) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/var/lib/rabbitmq",  # its .erlang.cookie: the nodes trust each other
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(node.port),
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_CONFIG_FILE": str(node.home / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(node.home / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(node.home / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(node.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.home / "log"),
            "RABBITMQ_PID_FILE": str(node.home / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            # two cores shared with other work: keep each VM small
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+S 1:1 +A 4",
        }

    def _launch(self, i: int) -> None:
        node = self.nodes[i]
        log = open(node.home / "log" / "console.log", "ab")  # noqa: SIM115 (owned by the proc)
        self.procs[i] = subprocess.Popen(
            ["runuser", "-u", USER, "--", str(RABBIT_BIN / "rabbitmq-server")],
            env=self._env(node),
            cwd=node.home,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def ctl(
        self, node: Node | int, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """`rabbitmqctl -n <node> args…`."""
        return self._cli("rabbitmqctl", node, *args, check=check, timeout=timeout)

    def queues_cli(
        self, node: Node | int, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`rabbitmq-queues -n <node> args…`."""
        return self._cli("rabbitmq-queues", node, *args, check=check)

    def _cli(
        self, tool: str, node: Node | int, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        n = self.nodes[node] if isinstance(node, int) else node
        done = subprocess.run(
            ["runuser", "-u", USER, "--", str(RABBIT_BIN / tool), "-q", "-n", n.name, *args],
            env=self._env(n),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{tool} -n {n.name} {' '.join(args)}: {done.stdout}{done.stderr}")
        return done

    def wait_running(self, i: int, timeout: float = 90) -> None:
        """Until node `i`'s app runs and its AMQP port accepts connections."""
        node = self.nodes[i]
        deadline = time.monotonic() + timeout
        while True:
            done = self.ctl(node, "await_startup", "--timeout", "10", check=False, timeout=30)
            if done.returncode == 0 and _accepts(node.port):
                return
            proc = self.procs.get(i)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{node.name} exited: {self.console(i)[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node.name} did not start: {done.stdout}{done.stderr}")
            time.sleep(0.5)

    def console(self, i: int) -> str:
        return (self.nodes[i].home / "log" / "console.log").read_text(errors="replace")

    def beam_pid(self, i: int) -> int | None:
        """The pid of node `i`'s Erlang VM, found by its node name (RabbitMQ names the node
        at boot from RABBITMQ_NODENAME, so it is in the VM's environment, not its argv)."""
        wanted = f"RABBITMQ_NODENAME={self.nodes[i].name}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if not (entry / "cmdline").read_bytes().split(b"\0")[0].endswith(b"beam.smp"):
                    continue
                if wanted in (entry / "environ").read_bytes().split(b"\0"):
                    return int(entry.name)
            except OSError:
                continue
        return None

    def kill(self, i: int) -> None:
        """`kill -9` node `i`'s Erlang VM: a crash, no goodbye to the cluster."""
        pid = self.beam_pid(i)
        if pid is None:
            raise RuntimeError(f"{self.nodes[i].name} is not running")
        os.kill(pid, signal.SIGKILL)
        proc = self.procs.pop(i, None)
        if proc is not None:
            proc.wait(timeout=30)

    def restart(self, i: int) -> None:
        """Start a killed node again; it rejoins its cluster from its data folder."""
        self._launch(i)
        self.wait_running(i)

    def stop_app(self, i: int) -> None:
        self.ctl(i, "stop_app")

    def start_app(self, i: int) -> None:
        self.ctl(i, "start_app")
        self.wait_running(i)

    def leader(self, queue: str, vhost: str = "/") -> int:
        """The index of the node leading quorum queue `queue`."""
        for i in self.running():
            done = self.ctl(
                i, "list_queues", "-p", vhost, "name", "leader", "--no-table-headers", check=False
            )
            if done.returncode != 0:
                continue
            for line in done.stdout.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == queue:
                    return next(k for k, n in enumerate(self.nodes) if n.name == parts[1])
        raise LookupError(f"no leader known for {queue}")

    def members(self, queue: str, vhost: str = "/") -> list[str]:
        for i in self.running():
            done = self.ctl(
                i, "list_queues", "-p", vhost, "name", "members", "--no-table-headers", check=False
            )
            for line in done.stdout.splitlines():
                if line.startswith(queue + "\t") or line.startswith(queue + " "):
                    return [m.strip("[]\"', ") for m in line.split(None, 1)[1].split(",")]
        return []

    def rebalance(self) -> None:
        self.queues_cli(self.running()[0], "rebalance", "quorum")

    def running(self) -> list[int]:
        return [i for i in range(len(self.nodes)) if self.beam_pid(i) is not None]

    def teardown(self) -> None:
        for i in range(len(self.nodes)):
            pid = self.beam_pid(i)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                # each node runs in a session of its own: its whole process group goes
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
