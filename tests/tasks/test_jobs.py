"""The resumable-job core: run keys, state tables, transient errors, the wait policy, the
error family (every class pickles) and the one retry predicate."""

from __future__ import annotations

import datetime as dt
import pickle

import botocore.session
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)
from prefect.states import Completed, Failed

import tasks.glue.lease
import tasks.glue.runner
import tasks.glue.start_guard
import tasks.redshift_data.errors
import tasks.stopping
from tasks.jobs import (
    GLUE_RUN_STATES,
    STATEMENT_STATES,
    InvalidRequestError,
    JobError,
    ReattachableError,
    RunKey,
    StatusUnknownError,
    SubmitError,
    WaitPolicy,
    is_transient,
    night_prefix,
    retry_condition,
    safe_to_retry,
    task_retry_options,
)

# -- run keys -------------------------------------------------------------------------------


def test_a_run_key_renders_a_statement_name_and_a_glue_argument() -> None:
    key = RunKey("mystore-nightly", dt.date(2026, 11, 25), "load_customer_dim")
    assert key.statement_name == "mystore-nightly/2026-11-25/load_customer_dim/attempt-1"
    assert key.with_attempt(3).statement_name.endswith("/load_customer_dim/attempt-3")
    assert key.step_prefix == "mystore-nightly/2026-11-25/load_customer_dim/attempt-"
    assert key.glue_argument == "mystore-nightly/2026-11-25/load_customer_dim"
    assert key.night_prefix == night_prefix("mystore-nightly", "2026-11-25")
    assert key.night_prefix == "mystore-nightly/2026-11-25/"
    assert RunKey("p", "2026-11-25", "s").logical_date == dt.date(2026, 11, 25)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "attempt"),
    [
        ("p/2026-11-25/load/attempt-1", 1),
        ("p/2026-11-25/load/attempt-12", 12),
        ("p/2026-11-25/load/attempt-01", None),
        ("p/2026-11-25/load/attempt-1x", None),
        ("p/2026-11-25/load_customer/attempt-1", None),
        ("p/2026-11-24/load/attempt-1", None),
        (None, None),
    ],
)
def test_attempt_of(name: str | None, attempt: int | None) -> None:
    assert RunKey("p", dt.date(2026, 11, 25), "load").attempt_of(name) == attempt


def test_the_token_is_stable_64_chars_per_attempt_and_per_warehouse() -> None:
    run = RunKey("p", dt.date(2026, 11, 25), "load")
    token = run.client_token("wg/dev")
    assert len(token) == 64
    assert token == RunKey("p", dt.date(2026, 11, 25), "load").client_token("wg/dev")
    assert token != run.with_attempt(2).client_token("wg/dev")
    assert token != run.client_token("other-wg/dev")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("a/b", "2026-11-25", "load"), "pipeline 'a/b' is invalid"),
        (("p", "2026-11-25", ""), "step '' is invalid"),
        (("p", "2026-11-25", "a b"), "step 'a b' is invalid"),
        (("p", "25/11/2026", "load"), "logical_date '25/11/2026' is invalid"),
        (("p", dt.datetime(2026, 11, 25, 1), "load"), "is a datetime"),
        (("p", "2026-11-25", "load", 0), "attempt 0 is invalid"),
    ],
)
def test_bad_keys_are_named(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        RunKey(*args)  # type: ignore[arg-type]


# -- states ---------------------------------------------------------------------------------


def test_the_state_tables_cover_every_state_botocore_knows() -> None:
    session = botocore.session.get_session()
    glue = session.get_service_model("glue").shape_for("JobRunState").enum
    data = session.get_service_model("redshift-data").shape_for("StatusString").enum
    assert set(GLUE_RUN_STATES.outcomes) == set(glue)
    assert set(STATEMENT_STATES.outcomes) == set(data) - {"ALL"}
    assert STATEMENT_STATES.outcome("FINISHED") == GLUE_RUN_STATES.outcome("SUCCEEDED")
    assert STATEMENT_STATES.outcome("ABORTED") == GLUE_RUN_STATES.outcome("STOPPED") == "aborted"
    assert STATEMENT_STATES.running == {"SUBMITTED", "PICKED", "STARTED"}
    assert GLUE_RUN_STATES.running == {"STARTING", "RUNNING", "STOPPING", "WAITING"}


def test_an_unknown_state_is_an_error_not_still_running() -> None:
    with pytest.raises(JobError, match=r"unknown Glue JobRun state 'PAUSED'; known: STARTING"):
        GLUE_RUN_STATES.outcome("PAUSED")
    with pytest.raises(JobError, match="unknown Redshift Data API statement state 'PAUSED'"):
        STATEMENT_STATES.outcome("PAUSED")


# -- transient errors -----------------------------------------------------------------------


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "DescribeStatement",
    )


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (client_error("ThrottlingException", "Rate exceeded"), True),
        (client_error("ValidationException", "Rate exceeded"), True),
        (client_error("ValidationException", "Request throttled, try again"), True),
        (client_error("ValidationException", "Id must be a UUID"), False),
        (client_error("InternalServerException", "oops", 500), True),
        (client_error("InternalServiceException", "glue oops", 500), True),
        (client_error("OperationTimeoutException", "glue"), True),
        (client_error("SomethingNew", "bad gateway", 502), True),
        (client_error("ExecuteStatementException", "names a statement", 500), False),
        (client_error("ResourceNotFoundException", "gone"), False),
        (client_error("EntityNotFoundException", "no such job"), False),
        (client_error("ActiveStatementsExceededException", "limit"), False),
        (ConnectionClosedError(endpoint_url="http://x"), True),
        (ReadTimeoutError(endpoint_url="http://x"), True),
        (SSLError(endpoint_url="http://x", error="EOF occurred in violation of protocol"), True),
        (ProxyConnectionError(proxy_url="http://proxy", error="refused"), True),
        (HTTPClientError(error="response ended early"), True),
        (CredentialRetrievalError(provider="ecs", error_msg="timed out"), False),
        (NoCredentialsError(), False),
        (ValueError("x"), False),
    ],
)
def test_is_transient(exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient


# -- waiting --------------------------------------------------------------------------------


def test_the_delay_grows_caps_and_jitters() -> None:
    policy = WaitPolicy(initial_interval=2.0, max_interval=30.0, multiplier=2.0, jitter=0.2)
    assert [policy.delay(n, 0.5) for n in range(6)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert policy.delay(0, 0.0) == pytest.approx(1.6)
    assert policy.delay(0, 0.999) == pytest.approx(2.4, abs=0.01)


def test_a_refused_submit_backs_off_from_the_submit_interval_up_to_30_s() -> None:
    backoff = WaitPolicy(submit_interval=4.0, jitter=0.0).submit_backoff()
    assert [backoff.delay(n, 0.5) for n in range(5)] == [4.0, 8.0, 16.0, 30.0, 30.0]
    assert WaitPolicy().submit_backoff().delay(0, 0.5) == 1.0  # the default: 1 s, 2 s, ...


def test_within_only_ever_shortens_the_timeout() -> None:
    policy = WaitPolicy(timeout_seconds=100)
    assert policy.within(None) is policy
    assert policy.within(500) is policy
    assert policy.within(10).timeout_seconds == 10
    assert policy.within(0.2).timeout_seconds == 1.0
    assert WaitPolicy(timeout_seconds=None).within(5).timeout_seconds == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"long_poll_seconds": 31}, "long_poll_seconds 31 is invalid"),
        ({"initial_interval": 0}, "0 < initial_interval <= max_interval"),
        ({"initial_interval": 20, "max_interval": 10}, "0 < initial_interval <= max_interval"),
        ({"multiplier": 0.5}, "multiplier 0.5 must be >= 1"),
        ({"jitter": 1.0}, r"jitter 1.0 must be in \[0, 1\)"),
        ({"timeout_seconds": 0}, "timeout_seconds 0 must be positive or None"),
        ({"transient_error_budget": -1}, "transient_error_budget -1 must be >= 0"),
        ({"submit_interval": 0}, "submit_interval 0 is invalid; allowed: more than 0, at most 30"),
        ({"submit_interval": 31}, "submit_interval 31 is invalid"),
    ],
)
def test_bad_policies_are_named(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        WaitPolicy(**kwargs)  # type: ignore[arg-type]


# -- errors ---------------------------------------------------------------------------------


def _all_subclasses(cls: type[JobError]) -> set[type[JobError]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


STATEMENT_FIELDS = {
    "statement_id": "s-1",
    "status": "FAILED",
    "query_id": 42,
    "sql": "call p()",
    "error": "boom",
}
SAMPLES: dict[type[JobError], JobError] = {
    JobError: JobError("plain"),
    InvalidRequestError: InvalidRequestError("bad value"),
    ReattachableError: ReattachableError("lost, will reattach"),
    SubmitError: SubmitError("refused", code="ActiveStatementsExceededException"),
    StatusUnknownError: StatusUnknownError("lost"),
    tasks.redshift_data.errors.ResultTooLargeError: tasks.redshift_data.errors.ResultTooLargeError(
        "too many rows"
    ),
    tasks.glue.runner.GlueJobFailedError: tasks.glue.runner.GlueJobFailedError(
        "raw2clean", "jr_1", "FAILED", "bad data"
    ),
    tasks.glue.runner.GlueConcurrencyError: tasks.glue.runner.GlueConcurrencyError(
        "no slot", code="ConcurrentRunsExceededException"
    ),
    tasks.glue.runner.GluePollError: tasks.glue.runner.GluePollError("unreachable"),
    tasks.glue.start_guard.GlueStartAmbiguousError: tasks.glue.start_guard.GlueStartAmbiguousError(
        "StartJobRun got no answer"
    ),
    tasks.redshift_data.errors.StatementLookupError: tasks.redshift_data.errors.StatementLookupError(
        "lookup throttled", statement_name="nightly/2026-11-25/load/attempt-"
    ),
    tasks.glue.lease.GlueStartLeaseError: tasks.glue.lease.GlueStartLeaseError(
        "no slot of mystore-glue-start:raw2clean"
    ),
    tasks.stopping.WorkStoppedError: tasks.stopping.WorkStoppedError(
        "flow run 1f0c is being stopped: not starting Glue job raw2clean"
    ),
}
for _cls in (
    tasks.redshift_data.errors.StatementError,
    tasks.redshift_data.errors.StatementFailedError,
    tasks.redshift_data.errors.StatementAbortedError,
    tasks.redshift_data.errors.StatementTimeoutError,
    tasks.redshift_data.errors.StatementStatusUnknownError,
):
    SAMPLES[_cls] = _cls("statement ended", **STATEMENT_FIELDS)  # type: ignore[arg-type]


def test_every_error_class_has_a_sample() -> None:
    assert _all_subclasses(JobError) | {JobError} == set(SAMPLES)


@pytest.mark.parametrize("error", SAMPLES.values(), ids=lambda e: type(e).__name__)
def test_every_error_survives_pickling(error: JobError) -> None:
    """Prefect persists a failed task's exception; a class that cannot be rebuilt from its
    pickle turns a clear failure into an unpickling crash."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)


def test_statement_errors_carry_their_ids_in_the_message() -> None:
    error = SAMPLES[tasks.redshift_data.errors.StatementFailedError]
    assert str(error) == "statement ended (statement_id=s-1, query_id=42, sql='call p()')"


# -- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize("error", SAMPLES.values(), ids=lambda e: type(e).__name__)
def test_only_errors_that_reattach_are_safe_to_retry(error: JobError) -> None:
    reattaches = (
        ReattachableError,
        SubmitError,
        StatusUnknownError,
        tasks.glue.runner.GlueConcurrencyError,
        tasks.glue.runner.GluePollError,
        tasks.glue.start_guard.GlueStartAmbiguousError,
        tasks.glue.lease.GlueStartLeaseError,
        tasks.redshift_data.errors.StatementStatusUnknownError,
        tasks.redshift_data.errors.StatementLookupError,
    )
    assert safe_to_retry(error) is (type(error) in reattaches)
    assert retry_condition(None, None, Failed(data=error)) is safe_to_retry(error)  # type: ignore[arg-type]


def test_a_plain_error_or_a_completed_state_is_not_retried() -> None:
    assert retry_condition(None, None, Failed(data=ValueError("x"))) is False  # type: ignore[arg-type]
    assert retry_condition(None, None, Completed(data=1)) is False  # type: ignore[arg-type]


def test_every_task_shares_the_retry_options() -> None:
    from tasks.glue import glue_job_run
    from tasks.redshift_data import call_procedure, execute_statement

    options = task_retry_options()
    for task in (execute_statement, call_procedure, glue_job_run):
        assert task.retries == options["retries"] == 2
        assert task.retry_delay_seconds == options["retry_delay_seconds"]
        assert task.retry_jitter_factor == options["retry_jitter_factor"]
        assert task.retry_condition_fn is retry_condition
