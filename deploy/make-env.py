"""Write `.env` for docker compose from `.env.example`, with freshly generated secrets.

    python3 deploy/make-env.py [--output .env] [--wechat-appid ID --wechat-secret SECRET]

Fills the empty secret lines (JWT signing key and its public half, PII key, webhook key,
RPC key, admin password, RabbitMQ passwords) and keeps everything else as in the example. Refuses to overwrite an
existing file (`--force` does): regenerating the PII key of a running deployment makes its
stored ID numbers and phones unreadable. Needs the `cryptography` package for the Ed25519
key (`.venv/bin/python deploy/make-env.py` has it). The file is created with mode 0600.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def jwt_private_key() -> str:
    """An Ed25519 PKCS#8 PEM, as a double-quoted dotenv value (newlines as \\n)."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError:
        sys.exit("make-env: needs the `cryptography` package: run it with .venv/bin/python")
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return '"' + pem.strip().replace("\n", "\\n") + '"'


def jwt_public_keys(values: dict[str, str]) -> str:
    """The public half of the JWT private key already in `values`, in the same form."""
    from cryptography.hazmat.primitives import serialization

    private = values["GUAHAO_JWT_PRIVATE_KEY"].strip('"').replace("\\n", "\n").encode()
    key = serialization.load_pem_private_key(private, password=None)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return '"' + pem.strip().replace("\n", "\\n") + '"'


def random_b64(size: int) -> Callable[[], str]:
    return lambda: base64.b64encode(secrets.token_bytes(size)).decode()


GENERATED: dict[str, Callable[[], str]] = {
    "GUAHAO_JWT_PRIVATE_KEY": jwt_private_key,
    "GUAHAO_PII_KEY": random_b64(64),
    "GUAHAO_WEBHOOK_KEY": random_b64(32),
    "GUAHAO_RPC_KEY": random_b64(32),
    "GUAHAO_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(18),
    "GRAFANA_ADMIN_PASSWORD": lambda: secrets.token_urlsafe(18),
    "MONGO_ROOT_PASSWORD": lambda: secrets.token_urlsafe(24),
    "MONGO_APP_PASSWORD": lambda: secrets.token_urlsafe(24),
    "MONGO_REPLICA_KEY": random_b64(96),
    **{f"RABBITMQ_{kind}_PASSWORD": lambda: secrets.token_urlsafe(24)
       for kind in ("OPERATOR", "GATEWAY", "AUTH", "CATALOG", "BOOKING", "NOTIFY",
                    "PAYMENT")},
}

# derived from values written before them in the same file
DERIVED: dict[str, Callable[[dict[str, str]], str]] = {
    "GUAHAO_JWT_PUBLIC_KEYS": jwt_public_keys,
}

_ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


def render(example: str, given: dict[str, str]) -> str:
    """The example with empty secrets generated and `given` values filled in."""
    lines = []
    values: dict[str, str] = {}
    for line in example.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match.group(2) == "":
            name = match.group(1)
            if name in given:
                line = f"{name}={given[name]}"
            elif name in GENERATED:
                line = f"{name}={GENERATED[name]()}"
            elif name in DERIVED:
                line = f"{name}={DERIVED[name](values)}"
        match = _ASSIGNMENT.match(line)
        if match:
            values[match.group(1)] = match.group(2)
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/make-env.py", description=__doc__.split("\n")[0])
    parser.add_argument("--example", type=Path, default=ROOT / ".env.example")
    parser.add_argument("--output", type=Path, default=ROOT / ".env")
    parser.add_argument("--wechat-appid", default="")
    parser.add_argument("--wechat-secret", default="")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    if args.output.exists() and not args.force:
        print(f"make-env: {args.output} exists; not overwriting it (--force does)",
              file=sys.stderr)
        return 1
    given = {k: v for k, v in (("WECHAT_APPID", args.wechat_appid),
                               ("WECHAT_SECRET", args.wechat_secret)) if v}
    text = render(args.example.read_text(encoding="utf-8"), given)
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    print(f"make-env: wrote {args.output}")
    missing = [n for n in ("WECHAT_APPID", "WECHAT_SECRET") if n not in given]
    if missing:
        print(f"make-env: fill in {' and '.join(missing)} before `docker compose up`",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
