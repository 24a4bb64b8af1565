"""A new data dir's Prefect database: copied from a template, not migrated (and its blocks
registered) anew.

Prefect makes a new server's SQLite database by running every one of its Alembic
migrations: about 9 CPU-seconds, 10 s of a new server's 15 s start on 2 cores, paid by
every new data dir (a user's first night, each throwaway data dir of a test or a bench).
The result depends only on the Prefect version and the installed collections, so the first
new database is made by Prefect's own migrations as before and then kept as a template,
``<cache>/prefect-<version>-<collections>.db``; each later new database is a copy of it
(SQLite's backup API: a consistent copy, written under a temporary name and renamed into
place).

The template also holds the block types and schemas Prefect's server registers when it
starts (its own blocks, its catalog of collections' blocks, and the blocks of the installed
collections, such as prefect-aws's): about a third of a new server's 5 CPU-seconds, since
it imports every collection first (bench/bench_prefect_start.py). They depend on Prefect's
version and the installed collections' (``collections_key``, in the template's name), so a
server skips that registration when its database holds every block type, schema and schema
reference of the installed versions' template as they are there
(``skip_block_registration_when_done``): a new database, since it is the template's copy,
and any database the registration would not change. Prefect's own memo of a registration
skips it only for the database it ran on, after importing the collections.

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
import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import MutableMapping
from importlib.metadata import entry_points, version
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "MYSTORE_CACHE_DIR"
DATABASE_FILE = "prefect.db"  # Prefect's default name under PREFECT_HOME


def cache_dir() -> Path:
    """Where per-machine caches of the local stack live (``MYSTORE_CACHE_DIR`` wins)."""
    if chosen := os.environ.get(CACHE_DIR_ENV):
        return Path(chosen).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "mystore"


# Prefect's settings for its block registration at server start (both read at its import):
# off, the server neither imports the collections nor registers their blocks.
BLOCK_REGISTRATION_SETTINGS = (
    "PREFECT_API_BLOCKS_REGISTER_ON_START",
    "PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION",
)


def template_path() -> Path:
    """The template for the installed Prefect and collections: Prefect's migrations differ
    between its versions, the registered blocks between theirs too."""
    return cache_dir() / f"prefect-{version('prefect')}-{collections_key()}.db"


def collections_key() -> str:
    """A short hash of the installed Prefect collections (the ``prefect.collections`` entry
    points Prefect imports before registering blocks) and their packages' versions."""
    installed = sorted(
        f"{point.name}={point.value} {point.dist.name if point.dist else ''}"
        f"=={point.dist.version if point.dist else ''}"
        for point in entry_points(group="prefect.collections")
    )
    return hashlib.sha256("\n".join(installed).encode()).hexdigest()[:12]


def skip_block_registration_when_done(
    path: Path, environ: MutableMapping[str, str], template: Path
) -> bool:
    """Set a server's environment (before Prefect is imported) to skip Prefect's block
    registration on start when it would change nothing in the database at ``path``: a new
    database (``prepare_database`` makes it from ``template``, the installed versions' one,
    with the blocks registered), or one that holds all of ``template``'s blocks as they are
    there (``registered_blocks``). Returns whether it did. A user who set either setting
    keeps both as set; a database that lacks a block, holds one changed, cannot be read, or
    has no template to compare with registers as Prefect does."""
    if any(name in environ for name in BLOCK_REGISTRATION_SETTINGS):
        return False
    if path.exists():
        try:
            if not registered_blocks(template) <= registered_blocks(path):
                return False
        except (OSError, sqlite3.Error, ValueError) as exc:
            log.info("blocks of %s not compared with %s (%s): registering", path, template, exc)
            return False
    for name in BLOCK_REGISTRATION_SETTINGS:
        environ[name] = "false"
    return True


def registered_blocks(path: Path) -> frozenset[tuple[Any, ...]]:
    """What Prefect's block registration writes into the database at ``path``, by content:
    each block type as its slug and the fields the registration sets, each schema as its
    type, checksum, version, capabilities (a set) and fields, each schema reference as its
    parent's checksum, name and child's checksum. Ids and timestamps differ between
    databases holding the same blocks."""
    if not path.is_file():
        raise FileNotFoundError(f"no Prefect database at {path}")
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        types = db.execute(
            "select 'type', slug, name, description, code_example, documentation_url,"
            " logo_url, is_protected from block_type"
        ).fetchall()
        schemas = db.execute(
            "select 'schema', t.slug, s.checksum, s.version, s.capabilities, s.fields"
            " from block_schema s join block_type t on t.id = s.block_type_id"
        ).fetchall()
        references = db.execute(
            "select 'reference', parent.checksum, r.name, child.checksum"
            " from block_schema_reference r"
            " join block_schema parent on parent.id = r.parent_block_schema_id"
            " join block_schema child on child.id = r.reference_block_schema_id"
        ).fetchall()
    return frozenset(
        [*types, *references]
        + [(*row[:4], tuple(sorted(json.loads(row[4]))), row[5]) for row in schemas]
    )


def database_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def prepare_database(path: Path, template: Path | None = None) -> str:
    """Make sure ``path`` holds a Prefect database before a server opens it, copied from
    ``template`` (default ``template_path()``); returns what was done, for the server's
    log: ``existing``, ``copied <template>`` or ``migrated``."""
    if path.exists():
        return "existing"
    template = template or template_path()
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
    """Prefect's own schema creation and block registration (what its server runs on start)
    on ``path``, which must be the database this process's Prefect settings name: Prefect
    keeps the first connection URL a process uses for the rest of its life."""
    from prefect.plugins import load_prefect_collections
    from prefect.server.database import provide_database_interface
    from prefect.server.models.block_registration import run_block_auto_registration
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    configured = PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
    if configured != database_url(path):
        raise ValueError(f"Prefect's database here is {configured}, not {database_url(path)}")

    async def create() -> None:
        database = provide_database_interface()
        await database.create_db()
        load_prefect_collections()  # as the server does first: their blocks register too
        async with await database.session() as session:
            await run_block_auto_registration(session=session)
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
