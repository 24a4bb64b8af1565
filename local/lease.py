"""Who owns a data dir: one live stack at a time, proven by a lock the kernel releases.

A stack that serves Glue job runs (``serve``, ``up``, a standalone nightly) holds an
exclusive ``flock`` on ``<data dir>/stack.lock`` for as long as its process lives, and
describes itself in ``<data dir>/stack.json`` (kind, pid and start time, endpoint, Prefect
URL). Because the kernel drops the lock the moment its holder dies (even by kill -9), the
lock answers the one question recovery needs: *is the owner of these runs dead?* A second
stack on the same data dir therefore never recovers (marks orphaned, kills) anything that
a live stack owns: it attaches to the live stack or refuses with a message naming it.

The lock's file descriptor is close-on-exec (Python's default), so child processes started
with ``subprocess`` (Glue runs, PostgreSQL, the Prefect server) never keep it alive.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from glue.paths import SPARK_GLOB_CHARACTERS
from local.processes import process_alive, this_process

LOCK_FILE = "stack.lock"
STATE_FILE = "stack.json"
# StackInfo.extra's key for the stack's keepers' last lines (local/keeper.py), timed.
KEEPER_EXTRA = "keeper"
# The data dir when none is given (the nights' MYSTORE_LOCAL_DATA_DIR default, relative
# to the current directory).
DEFAULT_DATA_DIR = Path(".local")
# Kinds of owner: a long-lived stack others may attach to, or one tied to a single run.
ATTACHABLE_KINDS = frozenset({"up", "serve"})


class StackInUseError(OSError):
    """A live stack owns the data dir; the message names it and what to do."""


@dataclass
class StackInfo:
    """What ``stack.json`` says about the stack that owns a data dir."""

    kind: str
    pid: int
    started: float
    data_dir: str
    ready: bool = False
    endpoint_url: str | None = None
    prefect_api_url: str | None = None
    prefect_pid: int | None = None
    prefect_started: float | None = None
    log_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prefect_ui_url(self) -> str | None:
        return self.prefect_api_url.removesuffix("/api") if self.prefect_api_url else None

    def describe(self) -> str:
        command = {
            "up": "python -m local up",
            "serve": "python -m local serve",
            "nightly": "a standalone night (python -m flows.nightly / flows.history)",
        }.get(self.kind, f"a local stack ({self.kind})")
        where = f" serving {self.endpoint_url}" if self.endpoint_url else " (still starting)"
        return f"{command}, pid {self.pid},{where}"


# What the parts of the stack cannot take in the data dir's path. Measured, each failed a
# night: PostgreSQL's pg_ctl starts the server through /bin/sh with the path in double
# quotes, where " ends it and $ and ` expand (a path holding $(...) ran that command);
# libpq's URI reads % as an escape; Spark reads its glob characters (glue.paths); a zone
# path may not hold : (the settings refuse it, so the night failed once its stack was up).
# A # was fine.
UNUSABLE_PATH_CHARACTERS = '"$`%:' + SPARK_GLOB_CHARACTERS


def unusable_characters(path: Path) -> list[str]:
    """The characters of ``path`` the local stack cannot take, in order of appearance."""
    unusable = (c for c in str(path) if c in UNUSABLE_PATH_CHARACTERS or not c.isprintable())
    return list(dict.fromkeys(unusable))


def refuse_an_unusable_data_dir(path: Path, named: str) -> None:
    """A data dir this process cannot use is refused by ``named``, before anything is
    created in or beside it: a path with characters the stack cannot take, a file (mkdir
    would only say "File exists"), a path under a file, or a directory (or the nearest
    existing parent of a missing one) it may not write."""
    if found := unusable_characters(path):
        raise ValueError(
            f"{named} holds {', '.join(repr(c) for c in found)}, which the local stack cannot "
            "take in a path (PostgreSQL starts through /bin/sh, Spark reads paths as globs and "
            f"URIs); choose a path without any of {UNUSABLE_PATH_CHARACTERS} or control "
            "characters (spaces, single quotes and letters of any language are fine)"
        )
    if path.exists() and not path.is_dir():
        raise ValueError(f"{named} is a file; expected a directory, which is created when missing")
    nearest = next((p for p in (path, *path.parents) if p.exists()), None)
    if nearest is None:
        return
    if not nearest.is_dir():
        raise ValueError(f"{named} cannot be created: {nearest} is a file, not a directory")
    if not os.access(nearest, os.W_OK | os.X_OK):
        what = "is not writable" if nearest == path else f"cannot be created in {nearest}"
        raise ValueError(f"{named} {what} by this user (permission denied)")


def make_data_dir(path: Path, named: str) -> None:
    """Create the data dir (and its parents), once ``refuse_an_unusable_data_dir`` has
    accepted it; mkdir's own refusal (a path under ``/proc``) is said by ``named`` too."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{named} cannot be created: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def when_owner_ends(
    info: StackInfo,
    then: Callable[[StackInfo], None],
    every: float = 1.0,
    grace: float = 3.0,
) -> Iterator[None]:
    """Call ``then(info)`` once if the stack's owner process ends while the block runs: from
    a watcher thread (checked every ``every`` s), or when an error leaves the block and the
    owner ends within ``grace`` s. A stopping stack aborts the statements it runs before its
    process ends, so an error a moment before the owner is seen gone is that end, not a
    fault of its own. Nothing is called once the block is left otherwise."""
    done = threading.Event()
    once = threading.Lock()

    def fire() -> None:
        if once.acquire(blocking=False):
            then(info)

    def watch() -> None:
        while not done.wait(every):
            if not process_alive(info.pid, info.started):
                fire()
                return

    watcher = threading.Thread(target=watch, name="stack-owner-watch", daemon=True)
    watcher.start()
    try:
        yield
    except Exception:
        if wait_gone(info.pid, info.started, grace):
            fire()
        raise
    finally:
        done.set()


def wait_gone(pid: int, started: float | None, seconds: float) -> bool:
    """Wait up to ``seconds`` for that process to end; True once it has."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not process_alive(pid, started):
            return True
        time.sleep(0.2)
    return not process_alive(pid, started)


def read_state(data_dir: Path) -> StackInfo | None:
    """``stack.json`` as written (alive or not), or None when missing or unreadable."""
    try:
        raw = json.loads((data_dir / STATE_FILE).read_text())
        return StackInfo(**raw)
    except (OSError, ValueError, TypeError):
        return None


def lock_is_held(data_dir: Path) -> bool:
    """True when some open file description holds the data dir's lock (any process,
    including this one through another descriptor)."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken just now
    return False


def live_stack(data_dir: Path, *, wait_ready_seconds: float = 0.0) -> StackInfo | None:
    """The stack that owns ``data_dir`` now (lock held, its process alive), or None.

    With ``wait_ready_seconds`` an attachable stack (``up``, ``serve``) that is still
    starting is waited for until it says it is ready; it is returned either way (check
    ``ready``). Any other owner is returned at once: nobody may attach to it anyway.
    """
    deadline = time.monotonic() + wait_ready_seconds
    while True:
        if not lock_is_held(data_dir):
            return None
        info = read_state(data_dir)
        if info is not None and not process_alive(info.pid, info.started):
            info = None  # the holder is another process that has not written its state yet
        settled = info is not None and (info.ready or info.kind not in ATTACHABLE_KINDS)
        if settled or time.monotonic() >= deadline:
            return info
        time.sleep(0.25)


class StackLease:
    """The exclusive ownership of a data dir, held until ``release`` or process death."""

    def __init__(self, data_dir: Path, info: StackInfo, fd: int) -> None:
        self.data_dir = data_dir
        self.info = info
        self._fd: int | None = fd
        self._publishing = threading.Lock()  # the keepers' threads publish too

    @classmethod
    def acquire(cls, data_dir: Path, kind: str, *, log_file: Path | None = None) -> StackLease:
        """Take the data dir or raise ``StackInUseError`` naming the stack that has it."""
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StackInUseError(in_use_message(data_dir, live_stack(data_dir))) from None
        pid, started = this_process()
        info = StackInfo(
            kind=kind,
            pid=pid,
            started=started,
            data_dir=str(data_dir),
            log_file=str(log_file) if log_file else None,
        )
        lease = cls(data_dir, info, fd)
        lease.publish()
        return lease

    def publish(self, **changes: Any) -> None:
        """Update ``stack.json`` atomically (write, then rename) with ``changes``."""
        with self._publishing:
            for key, value in changes.items():
                setattr(self.info, key, value)
            path = self.data_dir / STATE_FILE
            scratch = path.with_name(f".{STATE_FILE}.{os.getpid()}")
            scratch.write_text(json.dumps(asdict(self.info), indent=1) + "\n")
            scratch.replace(path)

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            state = read_state(self.data_dir)
            if state is not None and (state.pid, state.started) == (
                self.info.pid,
                self.info.started,
            ):
                (self.data_dir / STATE_FILE).unlink()
        os.close(self._fd)
        self._fd = None


def data_dir_option(data_dir: Path) -> str:
    """`` --data-dir <dir>`` (quoted for a shell) for a command printed for a user to run, or
    nothing for the default, .local here: the shell they paste it into may have neither the
    flag nor the ``MYSTORE_LOCAL_DATA_DIR`` this process was given."""
    if data_dir.resolve() == DEFAULT_DATA_DIR.resolve():
        return ""
    return f" --data-dir {shlex.quote(str(data_dir))}"


def in_use_message(data_dir: Path, holder: StackInfo | None) -> str:
    who = holder.describe() if holder else "another process (it is still starting)"
    advice = (
        "Use it: `python -m flows.nightly` attaches to it by itself, and "
        f"`python -m local status{data_dir_option(data_dir)}` prints its endpoint; or stop it "
        f"with `python -m local down{data_dir_option(data_dir)}`."
        if holder is None or holder.kind in ATTACHABLE_KINDS
        else "Wait for that run to finish, or run "
        f"`python -m local up{data_dir_option(data_dir)}` first so that several runs share "
        "one stack."
    )
    return f"The data dir {data_dir} is in use by {who}. {advice}"
