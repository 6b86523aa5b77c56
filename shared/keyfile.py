"""Secrets generated once into the data dir (dev): every replica on the host reads the same."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def create_secret_file(path: Path, make: Callable[[], bytes]) -> tuple[bytes, bool]:
    """Read `path`, creating it (mode 0600) with `make()` when absent.

    Returns the content and whether this call created it. Creation is atomic: the content
    is written to a private temp file and hard-linked into place, which fails if another
    process got there first, so concurrent starters all end up reading the same key.
    """
    if path.exists():
        return path.read_bytes(), False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(make())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
            created = True
        except FileExistsError:
            created = False
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes(), created
