"""Broker accounts: one RabbitMQ user per process kind (`deploy/rabbitmq/definitions.json`,
loaded by the broker at boot) and one per hospital HIS, provisioned here.

    python -m shared.broker_admin add-hospital <hid> [--vhost /] [--password P] [--print]
    python -m shared.broker_admin remove-hospital <hid> [--vhost /] [--print]

A hospital user `his_<hid>` may declare, bind and consume only its own queues `his.<hid>.*`,
may bind them to `guahao.events` only with keys of its own hospital (`*.*.<hid>`, or one
event type: `appointment.booked.<hid>`; RabbitMQ topic permissions check the binding key),
and can publish, delete or configure nothing else. With `--print` the rabbitmqctl commands
are printed instead of run (pipe them into `docker compose exec -T rabbitmq sh`).
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import re
import secrets
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from shared.messaging.events import EVENTS_EXCHANGE

HOSPITAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
Definitions = dict[str, Any]


def hospital_user(hospital_id: str) -> str:
    """The broker user of a hospital's HIS."""
    return f"his_{_checked(hospital_id)}"


def _checked(hospital_id: str) -> str:
    # the id goes into regexes and user names: letters, digits, _ and - only
    if not HOSPITAL_ID.match(hospital_id):
        raise ValueError(f"not a hospital id: {hospital_id!r}")
    return hospital_id


def hospital_grants(hospital_id: str, vhost: str = "/") -> Definitions:
    """The user's permissions and topic permissions, in the definitions file's format."""
    user, hid = hospital_user(hospital_id), _checked(hospital_id)
    own = rf"^his\.{hid}\..+$"
    return {
        "permissions": [
            {
                "user": user,
                "vhost": vhost,
                "configure": own,
                "write": own,
                "read": rf"^(his\.{hid}\..+|guahao\.events)$",
            }
        ],
        "topic_permissions": [
            {
                "user": user,
                "vhost": vhost,
                "exchange": EVENTS_EXCHANGE,
                "write": "^$",
                "read": rf"^[^.]+\.[^.]+\.{hid}$",
            }
        ],
    }


def hospital_commands(hospital_id: str, password: str, vhost: str = "/") -> list[list[str]]:
    """rabbitmqctl argument lists that create (or re-key) the hospital's user."""
    grants = hospital_grants(hospital_id, vhost)
    [perm], [topic] = grants["permissions"], grants["topic_permissions"]
    user = perm["user"]
    return [
        ["add_user", user, password],
        ["set_permissions", "-p", vhost, user, perm["configure"], perm["write"], perm["read"]],
        [
            "set_topic_permissions",
            "-p",
            vhost,
            user,
            topic["exchange"],
            topic["write"],
            topic["read"],
        ],
    ]


def load_definitions(path: Path) -> Definitions:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a definitions object")
    return data


def retarget(definitions: Definitions, *, vhost: str, user_prefix: str = "") -> Definitions:
    """The same definitions for another vhost and prefixed user names (a staging copy on a
    shared broker, or a test)."""
    out = copy.deepcopy(definitions)
    for user in out.get("users", []):
        user["name"] = user_prefix + user["name"]
    for key in ("permissions", "topic_permissions"):
        for grant in out.get(key, []):
            grant["user"] = user_prefix + grant["user"]
            grant["vhost"] = vhost
    out["vhosts"] = [{"name": vhost}]
    for key in ("exchanges", "queues", "bindings", "policies", "parameters"):
        for item in out.get(key, []):
            item["vhost"] = vhost
    return out


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt + SHA-256(salt + password))."""
    salt = secrets.token_bytes(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def with_passwords(definitions: Definitions, passwords: dict[str, str]) -> Definitions:
    """A copy whose named users get these passwords (hashed) instead of none."""
    out = copy.deepcopy(definitions)
    for user in out.get("users", []):
        if user["name"] in passwords:
            user["password_hash"] = password_hash(passwords[user["name"]])
            user["hashing_algorithm"] = "rabbit_password_hashing_sha256"
    return out


def delete_users(names: list[str]) -> None:
    """Delete users in one rabbitmqctl call (each call starts an Erlang VM: seconds)."""
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"unexpected user name {name!r}")
    users = ", ".join(f'<<"{name}">>' for name in names)
    rabbitmqctl(
        "eval",
        f'[rabbit_auth_backend_internal:delete_user(U, <<"guahao">>) || U <- [{users}]], ok.',
    )


def rabbitmqctl(
    *args: str, stdin: str | None = None, attempts: int = 3, transient: tuple[int, ...] = (69, 75)
) -> str:
    """Run one rabbitmqctl command; raises CalledProcessError with its output. A busy node
    that did not answer in time (exit 69/75, or codes the caller adds to `transient` for an
    idempotent command) is asked again."""
    for attempt in range(attempts):
        done = subprocess.run(
            ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=90, input=stdin
        )
        if done.returncode not in transient:
            break
        time.sleep(1.0 + attempt)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(
            done.returncode, ["rabbitmqctl", args[0]], done.stdout, done.stderr
        )
    return done.stdout


def import_definitions(definitions: Definitions, *, timeout: float = 30.0) -> None:
    """Import through rabbitmqctl and wait until the (asynchronous) import has landed."""
    # from stdin: a file path would be opened by the broker node, not by this process
    rabbitmqctl("import_definitions", "--format", "json", stdin=json.dumps(definitions))
    expected = {(g["vhost"], g["user"]) for g in definitions.get("topic_permissions", [])}
    expected |= {(g["vhost"], g["user"]) for g in definitions.get("permissions", [])}
    deadline = time.monotonic() + timeout
    while True:
        present = set()
        for vhost in {v for v, _ in expected}:
            try:
                listing = rabbitmqctl("list_topic_permissions", "-p", vhost)
                listing += rabbitmqctl("list_permissions", "-p", vhost)
            except subprocess.CalledProcessError:
                continue  # the vhost is not there yet
            present |= {(vhost, line.split("\t")[0]) for line in listing.splitlines()}
        if expected <= present:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"definitions not imported: missing {sorted(expected - present)}")
        time.sleep(0.2)


def add_hospital(hospital_id: str, password: str, vhost: str = "/") -> None:
    """Create the hospital's user with its grants (an existing one gets the new password)."""
    first, *grants = hospital_commands(hospital_id, password, vhost)
    try:
        rabbitmqctl(*first)
    except subprocess.CalledProcessError as exc:
        if "already exists" not in (exc.stdout or "") + (exc.stderr or ""):
            raise
        rabbitmqctl("change_password", first[1], password)
    for command in grants:
        rabbitmqctl(*command)


def remove_hospital(hospital_id: str) -> None:
    rabbitmqctl("delete_user", hospital_user(hospital_id))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.broker_admin", description="provision hospital HIS users on RabbitMQ"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add-hospital", help="create a hospital's user and grants")
    remove = sub.add_parser("remove-hospital", help="delete a hospital's user")
    for p in (add, remove):
        p.add_argument("hospital_id")
        p.add_argument("--vhost", default="/")
        p.add_argument(
            "--print",
            action="store_true",
            dest="print_only",
            help="print the rabbitmqctl commands instead of running them",
        )
    add.add_argument("--password", help="default: a fresh random one, printed once")
    args = parser.parse_args(argv)
    try:
        user = hospital_user(args.hospital_id)
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "remove-hospital":
        commands = [["delete_user", user]]
    else:
        password = args.password or secrets.token_urlsafe(24)
        commands = hospital_commands(args.hospital_id, password, args.vhost)
    if args.print_only:
        for command in commands:
            print(shlex.join(["rabbitmqctl", *command]))
    elif args.command == "remove-hospital":
        remove_hospital(args.hospital_id)
    else:
        add_hospital(args.hospital_id, password, args.vhost)
    if args.command == "add-hospital" and not args.password:
        print(
            f"broker user {user} password {password} (give it to the hospital; shown once)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
