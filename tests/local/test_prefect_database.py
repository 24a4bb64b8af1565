"""A new data dir's Prefect database: migrated once per Prefect version, then copied.

The real migration runs in a child process whose Prefect settings name the database (as
in ``python -m local.prefect_server``); the servers the suite starts all use the copy."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from local import prefect_database
from local.prefect_database import (
    DATABASE_FILE,
    alembic_revision,
    migrate,
    prepare_database,
    template_path,
)
from tests.local.stack_processes import REPO, clean_env

PREPARE_EACH = (
    "import json, sys\n"
    "from pathlib import Path\n"
    "from local.prefect_database import prepare_database\n"
    "print(json.dumps([prepare_database(Path(p)) for p in sys.argv[1:]]))"
)


def tables(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("select name from sqlite_master order by name")]


def journal_mode(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return str(db.execute("pragma journal_mode").fetchone()[0])


def test_a_broken_template_is_replaced_by_a_migration_and_the_next_database_copies_it(
    tmp_path: Path,
) -> None:
    cache, first, second = tmp_path / "cache", tmp_path / "a", tmp_path / "b"
    for folder in (cache, first, second):
        folder.mkdir()
    env = clean_env(MYSTORE_CACHE_DIR=str(cache), PREFECT_HOME=str(first), PYTHONPATH=str(REPO))
    template = cache / template_path().name  # the name carries the Prefect version
    template.write_text("not a database")

    out = subprocess.run(
        [sys.executable, "-c", PREPARE_EACH]
        + [str(p / DATABASE_FILE) for p in (first, second, first)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout) == ["migrated", f"copied {template}", "existing"]
    assert f"Prefect database template {template} is unusable" in out.stderr
    migrated, copied = first / DATABASE_FILE, second / DATABASE_FILE
    assert alembic_revision(copied) == alembic_revision(migrated) == alembic_revision(template)
    assert "flow_run" in tables(copied)
    assert tables(copied) == tables(migrated)
    # kept without a WAL, so reading it leaves nothing beside it
    assert journal_mode(template) == "delete"
    assert sorted(p.name for p in cache.iterdir()) == [template.name]


def test_an_existing_database_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / DATABASE_FILE
    path.write_bytes(b"a user's history")
    assert prepare_database(path) == "existing"
    assert path.read_bytes() == b"a user's history"


def test_a_migration_of_another_database_than_prefects_own_is_refused(tmp_path: Path) -> None:
    """Prefect keeps a process's first database URL: migrating another file would quietly
    migrate that one instead."""
    with pytest.raises(ValueError, match=r"Prefect's database here is .*, not .*elsewhere\.db"):
        migrate(tmp_path / "elsewhere.db")
    assert not (tmp_path / "elsewhere.db").exists()


def test_a_cache_that_cannot_be_written_costs_a_warning_not_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Prefect's migration is replaced at its seam by a tiny database at a revision."""
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("MYSTORE_CACHE_DIR", str(blocked / "cache"))

    def tiny_migration(path: Path) -> None:
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("create table alembic_version (version_num text)")
            db.execute("insert into alembic_version values ('abc123')")

    monkeypatch.setattr(prefect_database, "migrate", tiny_migration)
    path = tmp_path / DATABASE_FILE

    assert prepare_database(path) == "migrated"
    assert alembic_revision(path) == "abc123"
    assert not template_path().exists()
    assert f"could not keep {path} as the template" in caplog.text
