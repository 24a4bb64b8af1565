"""The local Glue Data Catalog's state: databases, tables and partitions in one JSON file.

A catalog is small (three tables, a partition per day), written a few times per night
and read by the Spectrum stand-in, so one file under the data dir, replaced atomically
under a lock, survives endpoint restarts without a schema to migrate. Records keep Glue's
own shapes (``DatabaseInput``/``TableInput``/``PartitionInput`` plus the fields Glue adds),
so the service answers with them as they are.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def partition_key(values: list[str]) -> str:
    """A partition's identity inside its table (values in partition-key order)."""
    return json.dumps(list(values))


class CatalogStore:
    """Thread-safe; ``read`` hands out deep copies, ``change`` persists after the mutation."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._state: dict[str, Any] = {"databases": {}, "tables": {}, "partitions": {}}
        if path is not None and path.exists():
            self._state = json.loads(path.read_text())

    def read(self, reader: Callable[[dict[str, Any]], T]) -> T:
        with self._lock:
            return copy.deepcopy(reader(self._state))

    def change(self, mutate: Callable[[dict[str, Any]], T]) -> T:
        with self._lock:
            result = mutate(self._state)
            self._save()
            return copy.deepcopy(result)

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(self._state, sort_keys=True))
        os.replace(temporary, self.path)

    # -- reads the Spectrum stand-in uses --------------------------------------------

    def table(self, database: str, name: str) -> dict[str, Any] | None:
        return self.read(lambda s: s["tables"].get(table_id(database, name)))

    def partitions(self, database: str, name: str) -> list[dict[str, Any]]:
        return self.read(lambda s: list(s["partitions"].get(table_id(database, name), {}).values()))


def table_id(database: str, name: str) -> str:
    # Glue names are case-insensitive and stored in lower case.
    return f"{database.lower()}.{name.lower()}"


def now() -> float:
    return round(time.time(), 3)
