"""Launcher of the embedded dev/CI store: nx-27017 (MongoDB wire protocol on SQLite).

nx-27017's SQL fast path for updates stores `$set` datetimes as strings, booleans as
integers and `$push`ed documents as JSON strings. Turning that path off before the server
starts sends every update through its Python path, where types survive.

Usage: python -m shared.storage.embedded --data-dir .data/mongo --port 27017
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def disable_sql_update_fast_path() -> None:
    """Force nx-27017's type-preserving update path."""
    from neosqlite.collection.query_helper import _sql_updates

    def never(self: Any, *args: Any, **kwargs: Any) -> bool:
        return False

    _sql_updates.SqlUpdatesMixin._can_use_sql_updates = never


def main(argv: list[str] | None = None) -> None:
    """Start nx-27017 in the foreground with the fast path disabled."""
    parser = argparse.ArgumentParser(prog="python -m shared.storage.embedded")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    disable_sql_update_fast_path()
    from nx_27017 import nx_27017

    sys.argv = [
        "nx-27017",
        "--data-dir", str(args.data_dir),
        "--host", args.host,
        "--port", str(args.port),
        "--pid-file", str(args.data_dir / "nx-27017.pid"),
        "--log-file", str(args.data_dir / "nx-27017.log"),
    ]
    nx_27017.main()


if __name__ == "__main__":
    main()
