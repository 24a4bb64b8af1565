"""The local Prefect server tells clients to retry a SQLite write conflict after 0.2 s, and
Prefect's client waits that long instead of its default 2 s (a night's Glue start lease met
such a conflict in most nights)."""

from __future__ import annotations

import asyncio
import sqlite3

import httpx
import pytest
import sqlalchemy.exc
from prefect.client.base import PrefectHttpxSyncClient
from prefect.server.api import server
from starlette.requests import Request

from local.prefect_server import LOCK_CONFLICT_RETRY_AFTER, retry_soon_after_lock_conflicts


def _request() -> Request:
    return Request({"type": "http", "method": "POST", "path": "/api/x", "headers": []})


def _locked() -> Exception:
    return sqlalchemy.exc.OperationalError(
        "UPDATE concurrency_limit_v2 ...", {}, sqlite3.OperationalError("database is locked")
    )


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch Prefect's handler for this test only (monkeypatch restores the original)."""
    monkeypatch.setattr(
        server, "custom_internal_exception_handler", server.custom_internal_exception_handler
    )
    retry_soon_after_lock_conflicts()
    retry_soon_after_lock_conflicts()  # a second call does not wrap it twice


def test_a_lock_conflict_is_a_503_with_retry_after_other_errors_are_not(patched: None) -> None:
    handler = server.custom_internal_exception_handler
    conflict = asyncio.run(handler(_request(), _locked()))
    assert conflict.status_code == 503
    assert conflict.headers["Retry-After"] == LOCK_CONFLICT_RETRY_AFTER == "0.2"
    crash = asyncio.run(handler(_request(), RuntimeError("a bug")))
    assert crash.status_code == 500 and "Retry-After" not in crash.headers


def test_a_prefect_without_the_handler_still_starts_with_its_own_retries(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delattr(server, "custom_internal_exception_handler")
    retry_soon_after_lock_conflicts()
    assert "no Prefect exception handler to patch" in capsys.readouterr().out
    assert not hasattr(server, "custom_internal_exception_handler")


@pytest.mark.parametrize(
    ("headers", "lowest", "highest"),
    [({"Retry-After": LOCK_CONFLICT_RETRY_AFTER}, 0.2, 0.3), ({}, 1.5, 2.5)],
    ids=["with-retry-after", "prefect-default"],
)
def test_prefect_s_client_waits_what_the_server_says(
    monkeypatch: pytest.MonkeyPatch, headers: dict[str, str], lowest: float, highest: float
) -> None:
    """The contract relied on: Prefect's client sleeps the Retry-After it is given (with a
    little jitter); without one it backs off 2 s."""
    slept: list[float] = []
    monkeypatch.setattr("prefect.client.base.time.sleep", slept.append)
    answers = iter([httpx.Response(503, headers=headers), httpx.Response(200, json={})])
    transport = httpx.MockTransport(lambda request: next(answers))
    with PrefectHttpxSyncClient(transport=transport, base_url="http://api") as client:
        assert client.post("/v2/concurrency_limits/increment-with-lease").status_code == 200
    assert len(slept) == 1 and lowest <= slept[0] <= highest, slept
