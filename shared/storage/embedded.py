"""Launcher of the embedded dev/CI store: nx-27017 (MongoDB wire protocol on SQLite).

nx-27017's SQL fast path for updates stores `$set` datetimes as strings, booleans as
integers and `$push`ed documents as JSON strings. Turning that path off before the server
starts sends every update through its Python path, where types survive.

That Python path in turn treats a dotted path in `$inc`, `$push`, `$addToSet` and `$unset`
as one top-level key (`{"$inc": {"slots.a.booked": 1}}` creates a field named
`slots.a.booked`), and loses a `$pull` beside them on the same field; MongoDB walks into
the sub-document. The launcher applies those operators (and `$pull`) to dotted paths
itself, as MongoDB does (pinned by tests/test_embedded_store.py).

Usage: python -m shared.storage.embedded --data-dir .data/mongo --port 27017
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def disable_sql_update_fast_path() -> None:
    """Force nx-27017's type-preserving update path."""
    from neosqlite.collection.query_helper import _sql_updates

    def never(self: Any, *args: Any, **kwargs: Any) -> bool:
        return False

    _sql_updates.SqlUpdatesMixin._can_use_sql_updates = never


_DOTTED_OPS = ("$inc", "$push", "$addToSet", "$unset", "$pull")


def _apply_dotted(doc: dict[str, Any], op: str, path: str, value: Any) -> None:
    parts = path.split(".")
    parent: Any = doc
    for part in parts[:-1]:
        if op == "$unset" and not isinstance(parent.get(part), dict):
            return
        parent = parent.setdefault(part, {})
        if not isinstance(parent, dict):
            raise ValueError(f"cannot apply {op} to {path}: {part} is not a document")
    leaf = parts[-1]
    if op == "$unset":
        parent.pop(leaf, None)
    elif op == "$pull":
        from neosqlite.collection.query_helper.positional_update import _matches_filter

        current = parent.get(leaf)
        if isinstance(current, list):
            parent[leaf] = [
                item
                for item in current
                if not (_matches_filter(item, value) if isinstance(value, dict) else item == value)
            ]
    elif op == "$inc":
        parent[leaf] = parent.get(leaf, 0) + value
    else:
        items = value["$each"] if isinstance(value, dict) and "$each" in value else [value]
        current = parent.setdefault(leaf, [])
        for item in items:
            if op == "$push" or item not in current:
                current.append(item)


def support_dotted_update_paths() -> None:
    """Make `$inc`/`$push`/`$addToSet`/`$unset` on dotted paths reach into sub-documents:
    each top-level field they touch is computed here and written back with `$set`."""
    import copy

    from neosqlite.collection.query_helper.update_operations import UpdateOperationsMixin

    original: Callable[..., tuple[dict[str, Any], bool]] = (
        UpdateOperationsMixin._perform_python_update
    )

    def perform(
        self: Any,
        doc_id: Any,
        update_spec: dict[str, Any],
        original_doc: dict[str, Any],
        *args: Any,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], bool]:
        tops = {
            k.split(".", 1)[0]
            for op, fields in update_spec.items()
            if op in _DOTTED_OPS and isinstance(fields, dict)
            for k in fields
            if "." in k and "$" not in k
        }
        if not tops:
            return original(self, doc_id, update_spec, original_doc, *args, **kwargs)
        work = {top: copy.deepcopy(original_doc.get(top, {})) for top in tops}
        plain: dict[str, Any] = {}
        for op, fields in update_spec.items():
            if not isinstance(fields, dict):
                plain[op] = fields
                continue
            keep: dict[str, Any] = {}
            for key, value in fields.items():
                top = key.split(".", 1)[0]
                if top in tops and "." in key and op in (*_DOTTED_OPS, "$set"):
                    if op == "$set":
                        _set_path(work, key, value)
                    else:
                        _apply_dotted(work, op, key, value)
                else:
                    keep[key] = value
            if keep:
                plain[op] = keep
        plain.setdefault("$set", {}).update(work)
        return original(self, doc_id, plain, original_doc, *args, **kwargs)

    UpdateOperationsMixin._perform_python_update = perform


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = value


def main(argv: list[str] | None = None) -> None:
    """Start nx-27017 in the foreground with the fast path disabled."""
    parser = argparse.ArgumentParser(prog="python -m shared.storage.embedded")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    disable_sql_update_fast_path()
    support_dotted_update_paths()
    from nx_27017 import nx_27017

    sys.argv = [
        "nx-27017",
        "--data-dir",
        str(args.data_dir),
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--pid-file",
        str(args.data_dir / "nx-27017.pid"),
        "--log-file",
        str(args.data_dir / "nx-27017.log"),
    ]
    nx_27017.main()


if __name__ == "__main__":
    main()
