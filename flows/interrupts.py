"""How a command stops when it is told to: Ctrl-C, SIGTERM, or a Prefect API that went away.

Each stop leaves the same way: what the run started is stopped first (the flow's stop path,
then the embedded stack's shutdown), then one line says what happened and that running the
command again is safe, without a traceback. Kept apart from ``flows.cli``, which only wires
these around a run.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM
# A SIGINT this soon after the first is the same Ctrl-C arriving twice: `uv run` with no
# terminal (a script, an IDE, CI) forwards to its child the SIGINT that the child's process
# group was sent too; a quick double press is the same.
SAME_CTRL_C_SECONDS = 1.0


@contextmanager
def ctrl_c_stops_once() -> Iterator[None]:
    """The first Ctrl-C stops the run, as Python's default does (KeyboardInterrupt); any
    later one is refused until the block is left, so it cannot cut short the stop that the
    first one started: the flow's stop path stopping the Glue runs and statements the run
    waits on (on AWS they would otherwise run on, and bill, with nobody waiting for them),
    its hooks, and the embedded stack's shutdown. Those take seconds and have timeouts of
    their own. A refused press after the first second says so on stderr; Ctrl-\\ (SIGQUIT)
    still ends the process at once.

    Only in the main thread, and only where SIGINT has Python's default handler (a command
    started in the background with SIGINT ignored keeps ignoring it).
    """
    presses: list[float] = []

    def on_sigint(signum: int, frame: Any) -> None:
        presses.append(time.monotonic())
        if len(presses) == 1:
            raise KeyboardInterrupt
        if presses[-1] - presses[0] > SAME_CTRL_C_SECONDS:
            # os.write, not print: this may run while the main thread is inside a print.
            os.write(2, _STILL_STOPPING)

    with _handled(signal.SIGINT, signal.default_int_handler, on_sigint):
        yield


_STILL_STOPPING = (
    b"Still stopping what the run started (its Glue runs and statements); this takes "
    b"seconds. Ctrl-\\ quits at once and may leave them running.\n"
)


class Terminated(BaseException):
    """SIGTERM arrived (a scheduler's stop, `kill`, `timeout`), raised in the main thread so
    that the run leaves through every ``finally``: ``run_cli`` then ends the process by the
    signal itself, as the default action would have."""


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """Turn the first SIGTERM into ``Terminated``; later ones are ignored while it unwinds.

    With Python's default action the process died at once: Prefect's engine catches the
    signal, records the run Crashed and stops its work, then sends it again to the default
    action, so the embedded stack's own shutdown never ran and its PostgreSQL server kept
    running after every stopped night. Prefect now sends it to this handler instead. Only
    in the main thread, and only where SIGTERM has the default action.
    """
    received: list[int] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        if not received:
            received.append(signum)
            raise Terminated

    with _handled(signal.SIGTERM, signal.SIG_DFL, on_sigterm):
        yield


@contextmanager
def _handled(signum: int, default: Any, handler: Callable[[int, Any], None]) -> Iterator[None]:
    """``handler`` for ``signum`` within the block, then the previous one again. Only in the
    main thread (Python runs handlers there only) and only where ``signum`` still has
    ``default``: a handler someone else installed, or an ignored signal, is left as it is."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signum) is not default
    ):
        yield
        return
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


def end_by_sigterm() -> None:
    """End the process as SIGTERM's default action does (a scheduler sees the signal)."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def interrupted_message(started: bool, state: Any, what: str, how: str = "Ctrl-C") -> str:
    """What the command prints after a Ctrl-C (or SIGTERM), instead of a traceback: what
    was stopped, and that running it again is safe."""
    if not started:
        return f"[red]Interrupted[/red] ({how}) before the {what} started: nothing submitted."
    if state is not None:  # the flow had ended; only what followed it was cut short
        return (
            f"[yellow]Interrupted[/yellow] ({how}) after the {what} ended "
            f"({state.name}); its summary is in the Prefect UI."
        )
    return (
        f"[red]Interrupted[/red] ({how}): the {what} stopped the Glue runs and statements it "
        "had started and is Crashed in Prefect. Run the same command again to finish it: "
        "steps that had finished are reattached, not run twice."
    )


def lost_prefect_message(exc: BaseException, what: str, api_url: str | None) -> str:
    """What the command prints when the Prefect API stopped answering during the run (after
    Prefect's client retried for about a minute), instead of the engine's traceback."""
    from prefect._internal.urls import strip_auth_from_url, strip_auth_from_urls_in_text

    url = strip_auth_from_url(api_url) if api_url else "(Prefect's temporary server)"
    reason = strip_auth_from_urls_in_text(f"{type(exc).__name__}: {exc}")
    return (
        f"[red]Prefect:[/red] the Prefect API at {url} stopped answering during the {what} "
        f"({reason}), so Prefect could not record how it ended. Nothing the {what} started is "
        "lost: once the server answers again, run the same command again to finish it; "
        "steps that had finished are reattached, not run twice."
    )
