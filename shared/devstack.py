"""The whole system on one machine: what `make run` starts, and what the system tests start.

Starts the embedded store (unless MONGO_URL is set), the local WeChat fake (unless
WECHAT_APPID and WECHAT_SECRET are set), the local WeChat Pay fake (unless WECHATPAY_MCHID
is set), every service and the gateway as child
processes, waits until the gateway is ready, and stops them all on SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

from shared.jwt_keys import dev_private_pem, public_keys_of_private
from shared.settings import DEFAULT_AMQP_URL, Settings
from shared.storage.testing import free_port, start_embedded_mongo, wait_for_port
from shared.wechat.paycrypto import dev_pay_credentials

SERVICES = ("auth", "catalog", "booking", "notify", "payment")


class StackError(RuntimeError):
    """The stack could not start; the message says what to do."""


def check_broker(amqp_url: str) -> None:
    """Fail early, with a way out, when RabbitMQ does not accept connections. `amqp_url`
    may list a cluster's nodes, comma-separated (AMQP_URLS): one reachable is enough."""
    tried = []
    for node in [u.strip() for u in amqp_url.split(",") if u.strip()] or [amqp_url]:
        url = urlparse(node)
        host, port = url.hostname or "127.0.0.1", url.port or 5672
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError:
            tried.append(f"{host}:{port}")
    raise StackError(
        f"RabbitMQ is not reachable at {', '.join(tried)}.\n"
        "  Start it:  rabbitmq-server -detached"
        "   (Debian/Ubuntu: apt-get install rabbitmq-server)\n"
        "  or with Docker:  docker run -d -p 5672:5672 rabbitmq:4-management\n"
        "  or point AMQP_URL at your broker."
    )


def _pump(stream: IO[bytes], prefix: str, sink: IO[str]) -> None:
    for raw in iter(stream.readline, b""):
        sink.write(f"{prefix} {raw.decode(errors='replace').rstrip()}\n")
        sink.flush()


class DevStack:
    """A running guahao: child processes, their environment and where they listen."""

    def __init__(
        self,
        data_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        gateway_port: int | None = None,
        log_dir: Path | None = None,
        services: tuple[str, ...] = SERVICES,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.base_env = dict(os.environ if env is None else env)
        self.log_dir = log_dir
        self.services = services
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env: dict[str, str] = {}
        self.gateway_port = gateway_port
        self.admin_username = ""
        self.admin_password = ""

    @property
    def gateway_url(self) -> str:
        host = self.env.get("GATEWAY_HOST", "127.0.0.1")
        return f"http://{host}:{self.gateway_port}"

    @property
    def wechat_url(self) -> str:
        return self.env["WECHAT_API_BASE"]

    @property
    def wechatpay_url(self) -> str:
        return self.env["WECHATPAY_API_BASE"]

    def start(self, *, timeout: float = 60.0) -> None:
        """Start everything and wait until the gateway's /readyz answers 200."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(self.base_env)
        env.setdefault("AMQP_URL", DEFAULT_AMQP_URL)
        env["GUAHAO_DATA_DIR"] = str(self.data_dir)
        env["PYTHONUNBUFFERED"] = "1"
        env["GUAHAO_OPS_PORT"] = "0"  # many processes on one host: each picks a free port
        check_broker(env.get("AMQP_URLS") or env["AMQP_URL"])
        if not env.get("GUAHAO_JWT_PUBLIC_KEYS"):  # the gateway trusts auth's (dev) key
            env["GUAHAO_JWT_PUBLIC_KEYS"] = public_keys_of_private(
                env.get("GUAHAO_JWT_PRIVATE_KEY") or dev_private_pem(self.data_dir)[0]
            )
        if not env.get("MONGO_URL"):
            proc, url = start_embedded_mongo(
                self.data_dir / "mongo", int(env.get("GUAHAO_MONGO_PORT", 0)) or None
            )
            self._adopt("mongo", proc)
            env["MONGO_URL"] = url
        if not (env.get("WECHAT_APPID") and env.get("WECHAT_SECRET")):
            defaults = Settings()
            env["WECHAT_APPID"] = defaults.wechat_appid
            env["WECHAT_SECRET"] = defaults.wechat_secret
            port = free_port()
            self._spawn(
                "wechat-fake",
                [
                    "-m",
                    "shared.wechat.fake",
                    "--port",
                    str(port),
                    "--appid",
                    env["WECHAT_APPID"],
                    "--secret",
                    env["WECHAT_SECRET"],
                ],
                env,
            )
            wait_for_port(port, proc=self.procs["wechat-fake"])
            env["WECHAT_API_BASE"] = f"http://127.0.0.1:{port}"
        self.gateway_port = self.gateway_port or int(env.get("GATEWAY_PORT", 0) or 0) or 8080
        env["GATEWAY_PORT"] = str(self.gateway_port)
        if not env.get("WECHATPAY_MCHID"):
            self._start_pay_fake(env)
        self.env = env
        for service in self.services:
            self.start_process(service)
        self.start_process("gateway")
        self.wait_ready(timeout)
        self._read_admin_credentials()

    def _start_pay_fake(self, env: dict[str, str]) -> None:
        """The WeChat Pay fake with the dev credentials, and the WECHATPAY_* of the services
        pointing at it (notifications go to this stack's gateway)."""
        creds = dev_pay_credentials(self.data_dir, env["WECHAT_APPID"])
        port = free_port()
        self._spawn(
            "wechatpay-fake",
            [
                "-m",
                "shared.wechat.payfake",
                "--port",
                str(port),
                "--credentials",
                str(self.data_dir),
                "--appid",
                env["WECHAT_APPID"],
            ],
            env,
        )
        wait_for_port(port, proc=self.procs["wechatpay-fake"])
        env["WECHATPAY_API_BASE"] = f"http://127.0.0.1:{port}"
        env["WECHATPAY_MCHID"] = creds["mchid"]
        env["WECHATPAY_MERCHANT_SERIAL"] = creds["merchant_serial"]
        env["WECHATPAY_MERCHANT_KEY"] = creds["merchant_key_pem"]
        env["WECHATPAY_APIV3_KEY"] = creds["apiv3_key"]
        env["WECHATPAY_PUBLIC_KEY"] = creds["public_key_pem"]
        env["WECHATPAY_PUBLIC_KEY_ID"] = creds["public_key_id"]
        env.setdefault(
            "WECHATPAY_NOTIFY_URL",
            f"http://127.0.0.1:{self.gateway_port}/api/v1/payments/wechat/notify",
        )

    def start_process(self, name: str, **env: str) -> None:
        """(Re)start one service or the gateway; `booking#2` is a second booking replica,
        `env` overrides variables for it (a second gateway needs its own GATEWAY_PORT)."""
        service = name.split("#")[0]
        module = "gateway" if service == "gateway" else f"services.{service}"
        self._spawn(name, ["-m", module], {**self.env, **env})

    def restart_store(self, down_for: float = 0.0) -> None:
        """Kill the embedded store and start it again on the same port and data (fault tests)."""
        self.kill_process("mongo")
        time.sleep(down_for)
        port = urlparse(self.env["MONGO_URL"]).port
        proc, _ = start_embedded_mongo(self.data_dir / "mongo", port)
        self._adopt("mongo", proc)

    def ops_url(self, name: str) -> str:
        """Where a child's /healthz and /metrics listen (read from its log)."""
        assert self.log_dir is not None, "only known when children log to files"
        lines = (self.log_dir / f"{name}.log").read_text().splitlines()
        for line in reversed(lines):  # the latest start of that process
            if "ops endpoints listening" in line:
                return f"http://127.0.0.1:{json.loads(line)['port']}"
        raise StackError(f"{name} has not announced its ops port")

    def kill_process(self, name: str) -> None:
        """SIGKILL one child (crash tests)."""
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop_process(self, name: str, *, timeout: float = 15.0) -> None:
        """Stop one child with SIGTERM (SIGKILL after the timeout)."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _spawn(self, name: str, args: list[str], env: Mapping[str, str]) -> None:
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
            proc = subprocess.Popen(
                [sys.executable, *args], env=dict(env), stdout=log, stderr=subprocess.STDOUT
            )
            log.close()
        else:
            proc = subprocess.Popen(
                [sys.executable, *args],
                env=dict(env),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            assert proc.stdout is not None
            threading.Thread(
                target=_pump, args=(proc.stdout, f"[{name:>11}]", sys.stdout), daemon=True
            ).start()
        self._adopt(name, proc)

    def _adopt(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        self.procs[name] = proc

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll /readyz until 200; raise with the last answer when it never comes."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise StackError(f"{name} exited with code {proc.returncode} during start-up")
            try:
                with urllib.request.urlopen(f"{self.gateway_url}/readyz", timeout=3) as resp:
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = exc.read().decode(errors="replace")
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise StackError(f"the gateway did not become ready in {timeout}s: {last}")

    def _read_admin_credentials(self) -> None:
        self.admin_username = self.env.get("GUAHAO_ADMIN_USERNAME") or "admin"
        password = self.env.get("GUAHAO_ADMIN_PASSWORD")
        if not password:
            path = self.data_dir / "keys" / "admin_password"
            password = path.read_text().strip() if path.exists() else "(see the auth log)"
        self.admin_password = password

    def stop(self) -> None:
        """Stop the gateway first, then the services, then the store and the fake."""
        order = ["gateway", *reversed(self.services), "wechat-fake", "wechatpay-fake", "mongo"]
        names = [n for n in order if n in self.procs] + [n for n in self.procs if n not in order]
        for name in names:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name in names:
            self.stop_process(name)


def main(argv: list[str] | None = None) -> int:
    """`make run`: start everything, print where it listens, run until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m shared.devstack")
    parser.parse_args(argv)
    settings = Settings.from_env()
    env = dict(os.environ)
    env.setdefault("GUAHAO_DEMO", "1")
    # readable lines in a terminal (coloured unless NO_COLOR); JSON everywhere else
    env.setdefault("GUAHAO_LOG_FORMAT", "console")
    stack = DevStack(settings.data_dir, env=env, gateway_port=settings.gateway_port)
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
    except StackError as exc:
        print(f"\nguahao could not start: {exc}\n", file=sys.stderr)
        stack.stop()
        return 1
    banner = {
        "gateway": f"{stack.gateway_url}/api/v1",
        "openapi": f"{stack.gateway_url}/api/v1/openapi.json",
        "health": f"{stack.gateway_url}/readyz",
        "metrics": f"{stack.gateway_url}/metrics",
        "wechat_fake": stack.env.get("WECHAT_API_BASE", ""),
        "wechatpay": stack.env.get("WECHATPAY_API_BASE", ""),
        "admin": f"{stack.admin_username} / {stack.admin_password}",
        "data_dir": str(stack.data_dir),
    }
    print("\n=== guahao is running (Ctrl-C stops everything) ===", flush=True)
    for key, value in banner.items():
        print(f"  {key:<12} {value}", flush=True)
    (stack.data_dir / "devstack.json").write_text(json.dumps(banner, ensure_ascii=False, indent=1))
    while not stopping.is_set():
        for name, proc in list(stack.procs.items()):
            if proc.poll() is not None:
                print(
                    f"[devstack] {name} exited with code {proc.returncode}; stopping",
                    file=sys.stderr,
                    flush=True,
                )
                stopping.set()
        stopping.wait(0.5)
    print("\nstopping guahao…", flush=True)
    stack.stop()
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
