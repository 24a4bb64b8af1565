"""A new data dir's Prefect database: migrated (and its blocks registered) once per Prefect
version and installed collections, then copied.

The real migration runs in a child process whose Prefect settings name the database (as
in ``python -m local.prefect_server``); the servers the suite starts all use the copy."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from local import prefect_database
from local.prefect_database import (
    BLOCK_REGISTRATION_SETTINGS,
    DATABASE_FILE,
    alembic_revision,
    cache_dir,
    collections_key,
    migrate,
    prepare_database,
    registered_blocks,
    skip_block_registration_when_done,
    template_path,
)
from tests.conftest import PrefectApi, _free_port, serving_prefect
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
    # the blocks a server registers on start, prefect-aws's among them, registered already
    slugs = {row[1] for row in registered_blocks(copied) if row[0] == "type"}
    assert {"aws-credentials", "s3-bucket", "secret", "local-file-system"} <= slugs
    assert registered_blocks(copied) == registered_blocks(migrated)
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


@contextlib.contextmanager
def new_data_dirs_server(home: Path, **extra: str) -> Iterator[PrefectApi]:
    """``python -m local.prefect_server`` on a new data dir's home (the user's template cache,
    as a night's server), with ``extra`` settings, until the block ends."""
    home.mkdir(exist_ok=True)
    api = PrefectApi(f"http://127.0.0.1:{_free_port()}/api", home, home / "storage")
    with serving_prefect(api, api.server_env(MYSTORE_CACHE_DIR=str(cache_dir()), **extra)):
        yield api


def test_a_new_database_skips_the_block_registration_that_would_change_nothing(
    tmp_path: Path,
) -> None:
    """Prefect's block registration on a server's start imports every collection first:
    about a third of a new server's 5 CPU-seconds. A new data dir's database (the template's
    copy) holds its result, so the server skips it, then and when started again; one made to
    register anyway (the user's own setting wins) adds or changes nothing."""
    home = tmp_path / "new"
    databases = []
    for start in ("first", "again"):
        if start == "again":  # the note earlier releases kept beside the database
            (home / f"{DATABASE_FILE}.blocks").write_text("prefect-3.9.1-0e19705db470.db\n")
        with (
            new_data_dirs_server(home) as api,
            urllib.request.urlopen(f"{api.api_url}/block_types/slug/aws-credentials") as got,
        ):
            assert json.load(got)["name"] == "AWS Credentials"  # the UI's catalog has it
        log = api.log.read_text()
        assert "; blocks registered already" in log, (start, log)
        prepared = re.search(r"local\.prefect_server: database (\w+)", log)
        assert prepared is not None, log
        databases.append(prepared.group(1))
        # Prefect writes its memo of a registration it ran; it ran none
        assert not (home / "memo_store.toml").exists(), start
        assert not (home / f"{DATABASE_FILE}.blocks").exists(), start
    assert databases in (["copied", "existing"], ["migrated", "existing"])

    with new_data_dirs_server(
        tmp_path / "forced", PREFECT_API_BLOCKS_REGISTER_ON_START="true"
    ) as forced:
        pass
    assert "; blocks registered on start" in forced.log.read_text()
    assert (forced.home / "memo_store.toml").exists(), forced.log.read_text()
    assert registered_blocks(forced.home / DATABASE_FILE) == registered_blocks(template_path())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The installed versions' template in the user's cache (made by Prefect's migration in a
    child process if no server of the suite made it yet)."""
    made = tmp_path_factory.mktemp("made") / DATABASE_FILE
    out = subprocess.run(
        [sys.executable, "-c", PREPARE_EACH, str(made)],
        cwd=REPO,
        env=clean_env(
            MYSTORE_CACHE_DIR=str(cache_dir()), PREFECT_HOME=str(made.parent), PYTHONPATH=str(REPO)
        ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert template_path().is_file()
    return template_path()


def _changed_description(db: sqlite3.Connection) -> None:
    db.execute("update block_type set description = 'edited' where slug = 'aws-credentials'")


def _schema_removed(db: sqlite3.Connection) -> None:
    # the webhook's: no schema reference points at it or from it
    db.execute(
        "delete from block_schema where block_type_id ="
        " (select id from block_type where slug = 'webhook')"
    )
    assert db.execute("select changes()").fetchone() == (1,)


def _reference_removed(db: sqlite3.Connection) -> None:
    db.execute(
        "delete from block_schema_reference where rowid = (select min(rowid) from block_schema_reference)"
    )


def _users_block_type_added(db: sqlite3.Connection) -> None:
    db.execute(
        "insert into block_type (id, name, slug, is_protected) values"
        " ('00000000-0000-0000-0000-000000000001', 'Redshift Target', 'redshift-target', 0)"
    )


def _updated_again(db: sqlite3.Connection) -> None:
    db.execute("update block_type set updated = '2027-01-01 00:00:00'")  # what a register does


@pytest.mark.parametrize(
    ("database", "edit", "users", "skipped"),
    [
        ("new", None, {}, True),
        ("the template's copy", None, {}, True),
        ("the template's copy", _users_block_type_added, {}, True),
        ("the template's copy", _updated_again, {}, True),
        ("the template's copy", _changed_description, {}, False),
        ("the template's copy", _schema_removed, {}, False),
        ("the template's copy", _reference_removed, {}, False),
        ("not a database", None, {}, False),
        ("the template's copy, no template", None, {}, False),
        ("new", None, {"PREFECT_API_BLOCKS_REGISTER_ON_START": "true"}, False),
        ("the template's copy", None, {"PREFECT_MEMOIZE_BLOCK_AUTO_REGISTRATION": "1"}, False),
    ],
)
def test_registration_is_skipped_only_where_it_would_change_nothing(
    tmp_path: Path,
    template: Path,
    database: str,
    edit: Callable[[sqlite3.Connection], None] | None,
    users: dict[str, str],
    skipped: bool,
) -> None:
    path = tmp_path / DATABASE_FILE
    if database == "not a database":
        path.write_bytes(b"a user's file")
    elif database != "new":
        shutil.copyfile(template, path)
        if edit is not None:
            with contextlib.closing(sqlite3.connect(path)) as db, db:
                edit(db)
    compared = template if "no template" not in database else tmp_path / "deleted.db"
    environ = dict(users)

    assert skip_block_registration_when_done(path, environ, compared) is skipped
    if skipped:
        assert environ == dict.fromkeys(BLOCK_REGISTRATION_SETTINGS, "false")
    else:
        assert environ == users


def test_the_template_is_made_again_for_other_collections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A template's blocks come from the collections installed when it was made: another
    version of one, or one more, is another template."""
    installed = [
        SimpleNamespace(
            name="prefect_aws",
            value="prefect_aws",
            dist=SimpleNamespace(name="prefect-aws", version="0.7.12"),
        )
    ]
    monkeypatch.setattr(prefect_database, "entry_points", lambda group: list(installed))
    first = collections_key()
    installed[0].dist.version = "0.7.13"
    upgraded = collections_key()
    installed.append(
        SimpleNamespace(
            name="prefect_gcp",
            value="prefect_gcp",
            dist=SimpleNamespace(name="prefect-gcp", version="0.6.0"),
        )
    )
    added = collections_key()
    assert len({first, upgraded, added}) == 3
    assert template_path().name == f"prefect-{prefect_database.version('prefect')}-{added}.db"
