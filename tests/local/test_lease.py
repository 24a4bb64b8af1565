"""The data dir's lease: one owner at a time, and a dead owner is proven dead by the kernel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from local.lease import (
    STATE_FILE,
    UNUSABLE_PATH_CHARACTERS,
    StackInfo,
    StackInUseError,
    StackLease,
    data_dir_option,
    in_use_message,
    live_stack,
    lock_is_held,
    make_data_dir,
    read_state,
    refuse_an_unusable_data_dir,
    unusable_characters,
    when_owner_ends,
)
from local.processes import start_time

REPO = Path(__file__).resolve().parents[2]


def test_printed_commands_name_a_data_dir_other_than_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commands printed for a user (``local down`` after a night, the nights after ``local
    up``) must reach the data dir from a shell with neither its flag nor its variable."""
    from local.embedded import PreparedNight

    monkeypatch.chdir(tmp_path)
    assert data_dir_option(Path(".local")) == data_dir_option(tmp_path / ".local") == ""
    odd = tmp_path / "My Projects" / "o'brien"
    option = data_dir_option(odd)
    assert option == " --data-dir '" + str(tmp_path) + "/My Projects/o'\"'\"'brien'"
    assert (
        subprocess.run(  # what a shell makes of it
            ["sh", "-c", f"printf %s{option}"], capture_output=True, text=True, check=True
        ).stdout
        == f"--data-dir{odd}"
    )
    night = PreparedNight(date(2026, 11, 2), odd, "http://127.0.0.1:1")
    assert f"`python -m local down{option}` stops it" in night.kept_running_hint()
    assert f"`python -m local up{option}` keeps" in night.kept_running_hint()
    night_owner = StackInfo(kind="nightly", pid=1, started=0.0, data_dir=str(odd))
    assert f"`python -m local up{option}` first" in in_use_message(odd, night_owner)
    up_owner = StackInfo(kind="up", pid=1, started=0.0, data_dir=str(odd))
    assert f"`python -m local down{option}`." in in_use_message(odd, up_owner)


def test_a_second_owner_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    lease = StackLease.acquire(tmp_path, "up")
    try:
        lease.publish(endpoint_url="http://127.0.0.1:1234", ready=True)
        with pytest.raises(StackInUseError) as refused:
            StackLease.acquire(tmp_path, "serve")
        message = str(refused.value)
        assert f"python -m local up, pid {os.getpid()}, serving http://127.0.0.1:1234" in message
        assert "python -m local down" in message
        live = live_stack(tmp_path)
        assert live is not None and live.pid == os.getpid() and live.ready
    finally:
        lease.release()
    assert not lock_is_held(tmp_path)
    assert not (tmp_path / STATE_FILE).exists()
    StackLease.acquire(tmp_path, "serve").release()


def test_a_standalone_night_is_named_and_not_offered_for_attaching(tmp_path: Path) -> None:
    lease = StackLease.acquire(tmp_path, "nightly")
    try:
        with pytest.raises(StackInUseError, match="Wait for that run to finish"):
            StackLease.acquire(tmp_path, "serve")
        started = time.monotonic()
        owner = live_stack(tmp_path, wait_ready_seconds=600)
        assert owner is not None and owner.kind == "nightly" and not owner.ready
        assert time.monotonic() - started < 60, "waited for a stack nobody may attach to"
    finally:
        lease.release()


def test_the_lease_of_a_killed_owner_is_free_and_its_state_is_not_live(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from local.lease import StackLease;"
            " StackLease.acquire(Path(sys.argv[1]), 'up'); print('held', flush=True);"
            " time.sleep(600)",
            str(tmp_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert lock_is_held(tmp_path)
        assert live_stack(tmp_path) is not None
        with pytest.raises(StackInUseError, match=f"pid {holder.pid}"):
            StackLease.acquire(tmp_path, "serve")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    state = read_state(tmp_path)
    assert state is not None and state.pid == holder.pid  # left behind by kill -9 ...
    assert live_stack(tmp_path) is None  # ... but not live: the kernel released the lock
    StackLease.acquire(tmp_path, "serve").release()


def test_a_held_lock_with_a_stale_state_file_waits_for_the_new_owner(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(
        json.dumps({"kind": "up", "pid": 999_999_999, "started": 0.0, "data_dir": "x"})
    )
    fd = os.open(tmp_path / "stack.lock", os.O_RDWR | os.O_CREAT)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
        assert live_stack(tmp_path, wait_ready_seconds=0.5) is None
        with pytest.raises(StackInUseError, match="still starting"):
            StackLease.acquire(tmp_path, "serve")
    finally:
        os.close(fd)


def sleeping_owner(data_dir: Path) -> tuple[subprocess.Popen[bytes], StackInfo]:
    """A process standing in for a stack's owner (`local up`), and its stack info."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = start_time(proc.pid)
    assert started is not None
    return proc, StackInfo(kind="up", pid=proc.pid, started=started, data_dir=str(data_dir))


def test_the_owners_end_is_noticed_while_watched_and_not_after(tmp_path: Path) -> None:
    """What ends a night attached to a stack whose `up` process goes (local/embedded.py)."""
    noticed = threading.Event()
    proc, info = sleeping_owner(tmp_path)
    with when_owner_ends(info, lambda gone: noticed.set(), every=0.05):
        assert not noticed.wait(0.3)  # alive: nothing
        proc.kill()
        proc.wait()
        assert noticed.wait(10), "the owner's end was not noticed"

    later = threading.Event()
    proc, info = sleeping_owner(tmp_path)
    with when_owner_ends(info, lambda gone: later.set(), every=0.05):
        pass
    proc.kill()
    proc.wait()
    assert not later.wait(0.5)  # the block ended: no longer watched


def test_an_error_as_the_owner_ends_is_that_end_and_any_other_error_is_its_own(
    tmp_path: Path,
) -> None:
    """A stopping stack aborts its statements before its process ends: the error that
    reaches the night first is the stack's end. On a live owner an error stays the error."""
    proc, info = sleeping_owner(tmp_path)
    calls: list[StackInfo] = []
    with (
        pytest.raises(RuntimeError, match="its own"),
        when_owner_ends(info, calls.append, every=60, grace=0.3),
    ):
        raise RuntimeError("its own")
    assert calls == []  # the owner lives: the error is the night's own
    with (
        pytest.raises(RuntimeError, match="aborted"),
        when_owner_ends(info, calls.append, every=60, grace=10),
    ):
        threading.Timer(0.2, proc.kill).start()  # ends just after the error
        raise RuntimeError("statement aborted: the endpoint stopped")
    proc.wait()
    assert calls == [info]  # the end is named, once


def test_a_data_dir_that_cannot_be_made_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(ValueError, match=r"^the dir is a file; expected a directory"):
        refuse_an_unusable_data_dir(a_file, "the dir")
    with pytest.raises(ValueError, match=rf"^the dir cannot be created: {a_file} is a file"):
        refuse_an_unusable_data_dir(a_file / "a" / "b", "the dir")
    assert a_file.read_text() == "mine"
    # procfs refuses a new directory whatever the user: mkdir's own error, named.
    refuse_an_unusable_data_dir(Path("/proc/mystore-test/data"), "the dir")
    with pytest.raises(ValueError, match=r"^the dir cannot be created: No such file or directory"):
        make_data_dir(Path("/proc/mystore-test/data"), "the dir")
    made = tmp_path / "x" / "y"
    make_data_dir(made, "the dir")
    assert made.is_dir()
    make_data_dir(made, "the dir")  # an existing one is fine

    # The suite runs as root, for whom every directory is writable: the permission check is
    # asked of os.access, as it is for any other user.
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(ValueError, match=rf"^the dir cannot be created in {tmp_path} by this"):
        refuse_an_unusable_data_dir(tmp_path / "new", "the dir")
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != made)
    with pytest.raises(ValueError, match=r"^the dir is not writable by this user"):
        refuse_an_unusable_data_dir(made, "the dir")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("char", [*UNUSABLE_PATH_CHARACTERS, "\n", "\t"])
def test_a_path_the_stack_cannot_take_is_refused_naming_the_character(
    char: str, tmp_path: Path
) -> None:
    """Each of these failed a night (PostgreSQL through /bin/sh, libpq's URI, Spark's globs
    and URIs), after the stack had started: a path holding $(...) even ran that command."""
    path = tmp_path / f"data{char}dir"
    with pytest.raises(ValueError) as refused:
        refuse_an_unusable_data_dir(path, "the dir")
    assert str(refused.value).startswith(f"the dir holds {char!r}, which the local stack cannot")
    assert not path.exists()


def test_a_path_with_spaces_quotes_and_any_letters_is_accepted(tmp_path: Path) -> None:
    # Nights ran end to end on these very names (measured; docs/local.md).
    refuse_an_unusable_data_dir(tmp_path / "sp a'c;é&+,=@!(x)~", "the dir")
    refuse_an_unusable_data_dir(tmp_path / "h#x", "the dir")
    assert unusable_characters(tmp_path / "a$b%$") == ["$", "%"]
