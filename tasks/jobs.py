"""The resumable-job core both services build on: run keys, states, errors, waiting, retries.

A Redshift Data API statement and a Glue job run are the same kind of thing to an
orchestrator: external work that is started once per (pipeline, logical date, step),
outlives the process that started it, and is found again by a name it carries. This
module holds what that means, once:

- ``RunKey`` and its renderings (a StatementName, a Glue job argument, a ClientToken);
- ``StateTable``: every service state maps to one outcome; an unknown state is an error;
- ``is_transient``: throttling, 5xx and dropped connections, worth asking again;
- ``WaitPolicy``: the one backoff / wait policy (jittered exponential, a timeout, a budget
  of transient errors in a row, optional long polling);
- ``JobError`` and its subclasses, picklable because Prefect persists exceptions;
- ``safe_to_retry`` / ``retry_condition``: retry only what reattaches, and the retry
  options every task shares.

Pure: no boto3 client, no Prefect import at module level.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

if TYPE_CHECKING:
    from prefect.client.schemas.objects import TaskRun
    from prefect.states import State
    from prefect.tasks import Task

# What the sync code logs to; Prefect passes its run logger (a LoggerAdapter) in.
Logger: TypeAlias = logging.Logger | logging.LoggerAdapter[Any]

# --- errors -------------------------------------------------------------------------------


def _rebuild(cls: type[JobError], args: tuple[Any, ...], state: dict[str, Any]) -> JobError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class JobError(Exception):
    """Base of every error raised by tasks/.

    Pickled by state, not by calling ``__init__`` again (the default for exceptions), so
    subclasses with keyword-only fields survive Prefect persisting a failed task's result.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class InvalidRequestError(JobError, ValueError):
    """Bad input caught before any call to AWS; the message names the value and the rule."""


class ReattachableError(JobError):
    """The attempt stopped for a reason outside the work itself; retrying is safe because
    the retry finds the same statement or run through its run key instead of starting
    the work again."""


class SubmitError(ReattachableError):
    """The service refused to start the work for a reason that may clear (capacity,
    throttling, a lost answer with an idempotency token)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        self.code = code
        super().__init__(message)


class StatusUnknownError(ReattachableError):
    """Asking for the work's status failed too often in a row; it may still be running."""


def safe_to_retry(error: BaseException) -> bool:
    """True when a retry reattaches to the same work rather than running it again."""
    return isinstance(error, ReattachableError)


def retry_condition(_task: Task[..., Any], _task_run: TaskRun, state: State[Any]) -> bool:
    """A Prefect ``retry_condition_fn``: retry a failed task only when ``safe_to_retry``.

    A FAILED statement or Glue run is the work's own verdict and is never retried blindly.
    """
    try:
        state.result(raise_on_failure=True)
    except BaseException as error:
        return safe_to_retry(error)
    return False


TASK_RETRIES = 2
TASK_RETRY_DELAYS_SECONDS = (10.0, 20.0)
TASK_RETRY_JITTER = 0.5


def task_retry_options() -> dict[str, Any]:
    """The retry options of every task in tasks/ (Data API and Glue alike)."""
    return {
        "retries": TASK_RETRIES,
        "retry_delay_seconds": list(TASK_RETRY_DELAYS_SECONDS),
        "retry_jitter_factor": TASK_RETRY_JITTER,
        "retry_condition_fn": retry_condition,
    }


# --- run keys -----------------------------------------------------------------------------

_PART_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_ALLOWED_PART = "1-100 ASCII letters, digits, '_', '.', '-'"
ATTEMPT_MARK = "/attempt-"


def _check_part(value: object, what: str) -> str:
    if not isinstance(value, str) or not _PART_RE.fullmatch(value):
        raise InvalidRequestError(f"{what} {value!r} is invalid; allowed: {_ALLOWED_PART}")
    return value


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        raise InvalidRequestError(
            f"logical_date {value!r} is a datetime; pass the date (logical dates are days)"
        )
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidRequestError(f"logical_date {value!r} is invalid; allowed: a date or 'YYYY-MM-DD'")


def night_prefix(pipeline: str, logical_date: dt.date | str) -> str:
    """``pipeline/YYYY-MM-DD/``: what every statement name and Glue run key of one night
    starts with, so a stop hook finds the night's work by name alone."""
    return f"{_check_part(pipeline, 'pipeline')}/{_as_date(logical_date).isoformat()}/"


@dataclass(frozen=True)
class RunKey:
    """One attempt of one step of one night of one pipeline.

    Derived from the run key only (never from SQL or code), so a flow edited and resumed
    mid-night still finds its work. ``attempt`` matters to the Data API, which keeps one
    statement per attempt; a Glue run is found by its step (the newest run decides).
    """

    pipeline: str
    logical_date: dt.date
    step: str
    attempt: int = 1

    def __post_init__(self) -> None:
        _check_part(self.pipeline, "pipeline")
        _check_part(self.step, "step")
        object.__setattr__(self, "logical_date", _as_date(self.logical_date))
        if not isinstance(self.attempt, int) or isinstance(self.attempt, bool) or self.attempt < 1:
            raise InvalidRequestError(f"attempt {self.attempt!r} is invalid; allowed: int >= 1")

    @property
    def night_prefix(self) -> str:
        return night_prefix(self.pipeline, self.logical_date)

    @property
    def step_prefix(self) -> str:
        """The StatementName prefix of every attempt; ends with the attempt marker so step
        ``load`` never matches ``load_customer``."""
        return f"{self.night_prefix}{self.step}{ATTEMPT_MARK}"

    @property
    def statement_name(self) -> str:
        """``pipeline/date/step/attempt-N``: the Data API StatementName."""
        return f"{self.step_prefix}{self.attempt}"

    @property
    def glue_argument(self) -> str:
        """``pipeline/date/step``: the value of the Glue run's ``--orchestrator_run_key``."""
        return f"{self.night_prefix}{self.step}"

    def with_attempt(self, attempt: int) -> RunKey:
        return replace(self, attempt=attempt)

    def attempt_of(self, statement_name: str | None) -> int | None:
        """The attempt a StatementName belongs to, None if it is not one of this step's."""
        if not statement_name or not statement_name.startswith(self.step_prefix):
            return None
        rest = statement_name[len(self.step_prefix) :]
        return int(rest) if rest.isdigit() and not rest.startswith("0") else None

    def client_token(self, scope: str) -> str:
        """64 hex chars; ``scope`` names the warehouse so two never share a token."""
        return hashlib.sha256(f"{scope}|{self.statement_name}".encode()).hexdigest()

    def __str__(self) -> str:
        return self.statement_name


# --- states -------------------------------------------------------------------------------

Outcome = Literal["running", "succeeded", "failed", "aborted"]


@dataclass(frozen=True)
class StateTable:
    """A service's states and the outcome each stands for; an unknown state is an error,
    so a new state can never make a wait loop spin until its timeout."""

    what: str
    outcomes: Mapping[str, Outcome]

    def outcome(self, state: object) -> Outcome:
        try:
            return self.outcomes[str(state)]
        except KeyError:
            known = ", ".join(self.outcomes)
            raise JobError(f"unknown {self.what} state {state!r}; known: {known}") from None

    @property
    def running(self) -> frozenset[str]:
        return frozenset(s for s, o in self.outcomes.items() if o == "running")


STATEMENT_STATES = StateTable(
    "Redshift Data API statement",
    {
        "SUBMITTED": "running",
        "PICKED": "running",
        "STARTED": "running",
        "FINISHED": "succeeded",
        "FAILED": "failed",
        "ABORTED": "aborted",
    },
)
GLUE_RUN_STATES = StateTable(
    "Glue JobRun",
    {
        "STARTING": "running",
        "RUNNING": "running",
        "STOPPING": "running",
        "WAITING": "running",
        "SUCCEEDED": "succeeded",
        "FAILED": "failed",
        "TIMEOUT": "failed",
        "ERROR": "failed",
        "EXPIRED": "failed",
        "STOPPED": "aborted",
    },
)

# --- transient errors ---------------------------------------------------------------------

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServerException",
        "InternalServiceException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "OperationTimeoutException",
        "RequestTimeout",
        "RequestTimeoutException",
        "ActiveWaitingRequestsExceededException",
        "DatabaseConnectionException",
    }
)
_THROTTLE_WORDS = ("rate exceeded", "throttl", "too many requests")
# Every way a request can fail to get an answer after botocore's own retries: a refused,
# reset or timed-out connection, a proxy, TLS (an SSL EOF mid-poll), a cut response.
_CONNECTION_ERRORS = (
    BotocoreConnectionError,  # EndpointConnectionError, ConnectTimeoutError, SSLError, proxy
    HTTPClientError,  # ConnectionClosedError, ReadTimeoutError, a response cut short
    ConnectionError,
)
# Errors whose 5xx answer still names the work: asking again would lose that.
_NAMES_THE_WORK = frozenset({"ExecuteStatementException", "BatchExecuteStatementException"})


def error_code(error: BaseException) -> str | None:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "")) or None
    return None


def is_throttling(error: BaseException) -> bool:
    """Throttling, including Redshift Serverless's ValidationException "Rate exceeded"."""
    code = error_code(error)
    if code in ("ThrottlingException", "Throttling", "TooManyRequestsException"):
        return True
    if code == "ValidationException" and isinstance(error, ClientError):
        message = str(error.response.get("Error", {}).get("Message", "")).lower()
        return any(word in message for word in _THROTTLE_WORDS)
    return False


def is_transient(error: BaseException) -> bool:
    """Throttling, 5xx and dropped connections: ask again without giving up on the work."""
    if isinstance(error, _CONNECTION_ERRORS):
        return True
    if not isinstance(error, ClientError):
        return False
    code = error_code(error)
    if code in TRANSIENT_CODES or is_throttling(error):
        return True
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return isinstance(status, int) and status >= 500 and code not in _NAMES_THE_WORK


# --- waiting ------------------------------------------------------------------------------

MAX_LONG_POLL_SECONDS = 30
MAX_SUBMIT_INTERVAL = 30.0  # the longest pause between two tries of a refused submit


@dataclass(frozen=True)
class WaitPolicy:
    """How to wait for work, or for a service to accept it.

    Delays grow ``initial_interval * multiplier**n`` up to ``max_interval``, spread by
    +/- ``jitter`` so many waiters do not poll in step. ``timeout_seconds`` bounds the whole
    wait (None: no bound); ``transient_error_budget`` is how many transient errors *in a
    row* are tolerated. ``long_poll_seconds`` is the Data API's ``WaitTimeSeconds`` (0: off;
    Glue has no long poll). ``submit_interval`` is the first pause after the service refused
    to start the work (throttling, capacity); it grows by ``multiplier`` up to
    ``MAX_SUBMIT_INTERVAL``, so a deployment (or a test) can size how patiently a refused
    submit is retried without changing how many times it is tried.
    """

    initial_interval: float = 0.25
    max_interval: float = 15.0
    multiplier: float = 2.0
    jitter: float = 0.2
    timeout_seconds: float | None = 24 * 3600.0
    transient_error_budget: int = 10
    long_poll_seconds: int = MAX_LONG_POLL_SECONDS
    submit_interval: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.submit_interval <= MAX_SUBMIT_INTERVAL:
            raise InvalidRequestError(
                f"submit_interval {self.submit_interval!r} is invalid; allowed: more than 0, "
                f"at most {MAX_SUBMIT_INTERVAL} seconds"
            )
        if not 0 <= self.long_poll_seconds <= MAX_LONG_POLL_SECONDS:
            raise InvalidRequestError(
                f"long_poll_seconds {self.long_poll_seconds!r} is invalid; allowed: 0 "
                f"(off) to {MAX_LONG_POLL_SECONDS}"
            )
        if not 0 < self.initial_interval <= self.max_interval:
            raise InvalidRequestError(
                f"need 0 < initial_interval <= max_interval, got {self.initial_interval!r} "
                f"and {self.max_interval!r}"
            )
        if self.multiplier < 1:
            raise InvalidRequestError(f"multiplier {self.multiplier!r} must be >= 1")
        if not 0 <= self.jitter < 1:
            raise InvalidRequestError(f"jitter {self.jitter!r} must be in [0, 1)")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise InvalidRequestError(
                f"timeout_seconds {self.timeout_seconds!r} must be positive or None"
            )
        if self.transient_error_budget < 0:
            raise InvalidRequestError(
                f"transient_error_budget {self.transient_error_budget!r} must be >= 0"
            )

    def delay(self, retry: int, unit_random: float) -> float:
        """Seconds before retry number ``retry`` (0-based); ``unit_random`` is in [0, 1)."""
        base = min(self.max_interval, self.initial_interval * self.multiplier ** max(0, retry))
        return base * (1 - self.jitter + 2 * self.jitter * unit_random)

    def submit_backoff(self) -> WaitPolicy:
        """The pauses between tries of a refused submit: from ``submit_interval``, growing by
        ``multiplier`` up to ``MAX_SUBMIT_INTERVAL``, with this policy's jitter."""
        return replace(
            self, initial_interval=self.submit_interval, max_interval=MAX_SUBMIT_INTERVAL
        )

    def within(self, seconds: float | None) -> WaitPolicy:
        """This policy with its timeout shortened to ``seconds`` (what a task timeout
        leaves), so our own timeout fires first and cancels the work."""
        if seconds is None:
            return self
        seconds = max(1.0, seconds)
        if self.timeout_seconds is not None and self.timeout_seconds <= seconds:
            return self
        return replace(self, timeout_seconds=seconds)
