"""A new data dir's Prefect database: copied from a per-version template, not migrated anew.

Prefect makes a new server's SQLite database by running every one of its Alembic
migrations: about 9 CPU-seconds, 10 s of a new server's 15 s start on 2 cores, paid by
every new data dir (a user's first night, each throwaway data dir of a test or a bench).
The result depends only on the Prefect version, so the first new database of a version
is made by Prefect's own migrations as before and then kept as a template,
``<cache>/prefect-<version>.db``; each later new database is a copy of it (SQLite's backup
API: a consistent copy, written under a temporary name and renamed into place).

The cache is ``$MYSTORE_CACHE_DIR``, else ``$XDG_CACHE_HOME/mystore``, else
``~/.cache/mystore``. A template that cannot be read (deleted midway, corrupt, not a Prefect
database) is removed and the database is migrated as Prefect would, so the worst case is
the old start-up time. The schema cannot be left behind either: the server still runs
its migrations on start, a no-op on a current copy, an upgrade on an older one.

Runs inside the server process (``python -m local.prefect_server``) before Prefect starts,
so a stack's start never waits for it; it imports Prefect's server modules only there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from importlib.metadata import version
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "MYSTORE_CACHE_DIR"
DATABASE_FILE = "prefect.db"  # Prefect's default name under PREFECT_HOME


def cache_dir() -> Path:
    """Where per-machine caches of the local stack live (``MYSTORE_CACHE_DIR`` wins)."""
    if chosen := os.environ.get(CACHE_DIR_ENV):
        return Path(chosen).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "mystore"


def template_path() -> Path:
    """The template for the installed Prefect: its migrations differ between versions."""
    return cache_dir() / f"prefect-{version('prefect')}.db"


def database_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def prepare_database(path: Path) -> str:
    """Make sure ``path`` holds a Prefect database before a server opens it; returns what
    was done, for the server's log: ``existing``, ``copied <template>`` or ``migrated``."""
    if path.exists():
        return "existing"
    template = template_path()
    if template.is_file():
        try:
            _copy(template, path)
            alembic_revision(path)  # a readable Prefect database, not a stray file
            return f"copied {template}"
        except (OSError, sqlite3.Error, ValueError) as exc:
            log.warning("Prefect database template %s is unusable (%s); migrating", template, exc)
            for broken in (path, template):
                with contextlib.suppress(OSError):
                    broken.unlink()
    migrate(path)
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        _copy(path, template)
    except (OSError, sqlite3.Error) as exc:  # a read-only home: the next one migrates too
        log.warning("could not keep %s as the template %s: %s", path, template, exc)
    return "migrated"


def migrate(path: Path) -> None:
    """Prefect's own schema creation (what its server runs on start) on ``path``, which
    must be the database this process's Prefect settings name: Prefect keeps the first
    connection URL a process uses for the rest of its life."""
    from prefect.server.database import provide_database_interface
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    configured = PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
    if configured != database_url(path):
        raise ValueError(f"Prefect's database here is {configured}, not {database_url(path)}")

    async def create() -> None:
        database = provide_database_interface()
        await database.create_db()
        await (await database.engine()).dispose()

    asyncio.run(create())


def alembic_revision(path: Path) -> str:
    """The schema revision ``path`` is at (Alembic's ``alembic_version`` table)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute("select version_num from alembic_version").fetchall()
    if len(rows) != 1:
        raise ValueError(f"{path} has {len(rows)} alembic_version rows, not 1")
    return str(rows[0][0])


def _copy(source: Path, target: Path) -> None:
    """``source`` to ``target`` with SQLite's backup API, renamed into place when whole."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with (
            contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
            contextlib.closing(sqlite3.connect(partial)) as dst,
        ):
            src.backup(dst)
            # Rollback journal at rest: a read-only open of a WAL file leaves -wal and -shm
            # files beside the template. Prefect turns WAL on again at its first connection.
            dst.execute("pragma journal_mode=delete")
        partial.replace(target)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
