"""Suspend mode's pure parts: tags, the storage rule, own-run reattach, cache keys."""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil

import pytest
from prefect.cache_policies import CompoundCachePolicy, TaskSource
from prefect.tasks import Task

import flows
import tasks
from flows.waiting import (
    WAITING_TAG,
    Progress,
    Suspender,
    WaitModeError,
    Work,
    parse_wait_mode,
    refuse_unshared_storage,
    storage_is_shared,
    waiting_message,
    work_from_tags,
)
from tasks.redshift_data.submit import PriorStatement, decide


def test_work_round_trips_through_run_tags() -> None:
    work = [Work("statement", "5c9c01c8-f299"), Work("glue", "jr_abc", "raw2clean")]
    tags = ["mystore", WAITING_TAG, *(w.tag for w in work)]
    assert work_from_tags(tags) == work


def test_a_step_reattaches_to_its_own_kind_of_work_only() -> None:
    """A statement step is given statement ids only (it asks the Data API about each one its
    lookup did not list; a Glue run id there failed a resumed night), a Glue step run ids."""
    work = [Work("statement", "5c9c01c8-f299"), Work("glue", "jr_abc", "raw2clean")]
    suspender = Suspender(None, [w.tag for w in work])  # type: ignore[arg-type]
    assert suspender.own_ids("statement") == {"5c9c01c8-f299"}
    assert suspender.own_ids("glue") == {"jr_abc"}


def test_wait_mode_names_the_allowed_values() -> None:
    assert parse_wait_mode("suspend") == "suspend"
    with pytest.raises(WaitModeError, match="'sleep' is invalid; allowed: poll, suspend"):
        parse_wait_mode("sleep")


def test_suspend_on_a_multi_host_pool_needs_shared_storage() -> None:
    refuse_unshared_storage("process", shared=False)  # one host: local storage is fine
    refuse_unshared_storage(None, shared=False)  # serve(): the runner's host
    refuse_unshared_storage("ecs", shared=True)
    with pytest.raises(WaitModeError, match="'ecs' work pool needs shared result storage"):
        refuse_unshared_storage("ecs", shared=False)
    block = {"PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK": "s3-bucket/x"}
    assert storage_is_shared(block, declared_shared=False)
    assert not storage_is_shared({}, declared_shared=False)


def test_state_message_says_what_and_since_when() -> None:
    since = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)
    message = waiting_message(
        [Progress(Work("statement", "abc"), "STARTED", "running", since)],
        now=dt.datetime(2026, 11, 26, 3, 1, tzinfo=dt.UTC),
    )
    assert message == (
        "waiting on 1: statement abc (STARTED since 2026-11-26T03:00:00+00:00) "
        "(suspended 03:01:00 UTC)"
    )


def test_a_run_reattaches_to_its_own_failed_statement_even_when_forced() -> None:
    prior = [PriorStatement("s1", 1, "FAILED", "2026-11-26T03:00:00")]
    assert decide(prior).action == "submit"  # a new run tries again
    own = decide(prior, force=True, reattach_to={"s1"})
    assert (own.action, own.statement_id, own.attempt) == ("reattach", "s1", 1)


def _policies(policy: object) -> list[object]:
    if isinstance(policy, CompoundCachePolicy):
        return [p for part in policy.policies for p in _policies(part)]
    return [policy]


def test_no_task_caches_on_its_source_code() -> None:
    """A code change between suspend and resume must not resubmit (DEFAULT includes it)."""
    found = []
    for package in (flows, tasks):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            module = importlib.import_module(info.name)
            found += [v for v in vars(module).values() if isinstance(v, Task)]
    assert len(found) >= 8
    for task in found:
        if task.cache_key_fn is not None:
            continue  # keyed explicitly (the submit checkpoint: run key + warehouse)
        parts = _policies(task.cache_policy)
        assert not any(isinstance(p, TaskSource) for p in parts), task.name
