"""The Prefect start lease (tasks/glue/lease.py) against the session's real Prefect server."""

from __future__ import annotations

import contextvars
import pickle
import socket
import threading
import time

import httpx
import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

from local.endpoint import AwsEndpoint
from tasks.glue import GlueStartLeaseError, prefect_start_lock, run_glue_job
from tasks.glue.lease import ensure_start_limit, start_lease_name
from tasks.jobs import RunKey, safe_to_retry
from tests.conftest import PrefectApi
from tests.tasks.test_glue import FAST, NIGHT, glue_client, runs_with_key


def test_one_limit_per_job_named_without_the_characters_prefect_bans() -> None:
    assert start_lease_name("mystore-clean") == "mystore-glue-start:mystore-clean"
    odd = start_lease_name("team/clean<1>")
    assert odd.startswith("mystore-glue-start:team_clean_1_-") and len(odd) == 19 + 13 + 9
    assert odd != start_lease_name("team_clean<1>")  # the hash keeps two jobs apart


def test_the_limit_is_created_once_with_limit_1_and_a_changed_one_refused(
    prefect_settings: PrefectApi,
) -> None:
    name = start_lease_name("lease-test-job")
    ensure_start_limit(name)
    ensure_start_limit(name)  # exists already: fine
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(name).limit == 1
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=2))
        try:
            with pytest.raises(GlueStartLeaseError, match=r"active=True with limit 2; it must"):
                ensure_start_limit(name)
        finally:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=1))


def test_a_creator_that_loses_the_race_reads_the_limit_instead(
    prefect_settings: PrefectApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes starting their first night at once both find no limit and both
    create it: the loser's insert fails on the unique name, which the SQLite-backed server
    answered with a 500 (seen in the parity suite). The loser reads the limit instead of
    failing its start."""
    name = start_lease_name(f"lease-race-{time.monotonic_ns()}")
    ensure_start_limit(name)  # the winner
    real_read = SyncPrefectClient.read_global_concurrency_limit_by_name
    reads: list[str] = []

    def read_before_the_winner(self: SyncPrefectClient, limit_name: str) -> object:
        reads.append(limit_name)
        if len(reads) == 1:  # the loser looked before the winner's create landed
            raise ObjectNotFound(http_exc=Exception("404"))
        return real_read(self, limit_name)

    def lost_the_race(self: SyncPrefectClient, limit: object) -> None:
        request = httpx.Request("POST", "http://prefect/api/v2/concurrency_limits/")
        response = httpx.Response(500, request=request, json={"exception_message": "x"})
        raise PrefectHTTPStatusError.from_httpx_error(
            httpx.HTTPStatusError("500", request=request, response=response)
        )

    monkeypatch.setattr(
        SyncPrefectClient, "read_global_concurrency_limit_by_name", read_before_the_winner
    )
    monkeypatch.setattr(SyncPrefectClient, "create_global_concurrency_limit", lost_the_race)
    ensure_start_limit(name)  # reads the winner's limit after the 500: limit 1, active
    assert reads == [name, name]
    with pytest.raises(ObjectNotFound):  # a 500 with no limit behind it is not swallowed
        ensure_start_limit(start_lease_name(f"lease-none-{time.monotonic_ns()}"))


def test_three_steps_of_a_night_post_one_create_and_later_nights_none(
    prefect_settings: PrefectApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A night's three clean steps make sure of the limit at once. Each posting a create
    made the server answer 503 (SQLite locked), which the client retried after about 2 s
    on every night: one create on first use, and none once the limit exists."""
    creates: list[str] = []
    real_create = SyncPrefectClient.create_global_concurrency_limit

    def counted(self: SyncPrefectClient, limit: GlobalConcurrencyLimitCreate) -> object:
        creates.append(limit.name)
        return real_create(self, limit)

    monkeypatch.setattr(SyncPrefectClient, "create_global_concurrency_limit", counted)
    name = start_lease_name(f"lease-first-use-{time.monotonic_ns()}")
    errors: list[BaseException] = []

    def step() -> None:
        try:
            ensure_start_limit(name)
        except BaseException as exc:  # reported below
            errors.append(exc)

    steps = [
        threading.Thread(target=contextvars.copy_context().run, args=(step,)) for _ in range(3)
    ]
    for thread in steps:
        thread.start()
    for thread in steps:
        thread.join(30)
    assert errors == [] and creates == [name]
    ensure_start_limit(name)  # the next night
    assert creates == [name]


def test_the_lock_lets_one_holder_in_at_a_time(prefect_settings: PrefectApi) -> None:
    """A second holder waits until the first one has released the slot."""
    lock = prefect_start_lock(timeout_seconds=60)
    order: list[str] = []
    first_in = threading.Event()

    def second() -> None:
        first_in.wait(30)
        with lock("lease-order-job"):
            order.append("second in")

    # the thread runs in this context, so it talks to the test server too
    other = threading.Thread(target=contextvars.copy_context().run, args=(second,))
    other.start()
    with lock("lease-order-job"):
        first_in.set()
        time.sleep(1.0)  # the second holder asks meanwhile and is told to wait
        order.append("first out")
    other.join(timeout=90)
    assert order == ["first out", "second in"]


def test_without_the_prefect_api_nothing_is_started(
    prefect_settings: PrefectApi, endpoint: AwsEndpoint
) -> None:
    """No lease, no start: a clear error a task retry handles, and Glue never asked."""
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    client = glue_client(endpoint.url)
    key = RunKey("p", NIGHT, "no-lease")
    with (
        temporary_settings(updates={PREFECT_API_URL: dead, PREFECT_CLIENT_MAX_RETRIES: 0}),
        pytest.raises(GlueStartLeaseError, match="mystore-glue-start:standin") as err,
    ):
        run_glue_job(client, "standin", {}, run_key=key, start_lock=prefect_start_lock(), **FAST)
    assert "nothing was sent to Glue" in str(err.value) and err.value.__cause__ is not None
    assert safe_to_retry(err.value)
    copy = pickle.loads(pickle.dumps(err.value))
    assert (type(copy), str(copy)) == (GlueStartLeaseError, str(err.value))
    assert runs_with_key(client, "standin", key.glue_argument) == []
