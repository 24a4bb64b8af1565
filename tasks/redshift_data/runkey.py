"""Names and tokens that make a submit idempotent per (pipeline, logical date, step, attempt).

The StatementName is how a statement is found again after the ClientToken's ~8 hour window
or a lost checkpoint (ListStatements filters by name prefix); the ClientToken is how AWS
itself refuses to start the same attempt twice. Both derive from the run key only, never
from the SQL or the code, so an edited flow resumed mid-night still reattaches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from tasks.redshift_data.errors import InvalidRequestError
from tasks.redshift_data.target import RedshiftTarget

_PART_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_ATTEMPT_MARK = "/attempt-"


def _check_part(value: object, what: str) -> str:
    if not isinstance(value, str) or not _PART_RE.fullmatch(value):
        raise InvalidRequestError(
            f"{what} {value!r} is invalid; allowed: 1-100 ASCII letters, digits, '_', '.', '-'"
        )
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


@dataclass(frozen=True)
class StepKey:
    """One step of one night of one pipeline; attempts of it share a name prefix."""

    pipeline: str
    logical_date: dt.date
    step: str

    def __post_init__(self) -> None:
        _check_part(self.pipeline, "pipeline")
        _check_part(self.step, "step")
        object.__setattr__(self, "logical_date", _as_date(self.logical_date))

    @property
    def name_prefix(self) -> str:
        """Ends with the attempt marker so step ``load`` never matches ``load_customer``."""
        return f"{night_prefix(self.pipeline, self.logical_date)}{self.step}{_ATTEMPT_MARK}"

    def attempt(self, number: int) -> RunKey:
        return RunKey(self, number)

    def attempt_of(self, statement_name: str | None) -> int | None:
        """The attempt a StatementName belongs to, None if it is not one of ours."""
        if not statement_name or not statement_name.startswith(self.name_prefix):
            return None
        rest = statement_name[len(self.name_prefix) :]
        return int(rest) if rest.isdigit() and not rest.startswith("0") else None


@dataclass(frozen=True)
class RunKey:
    step_key: StepKey
    attempt: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.attempt, int) or isinstance(self.attempt, bool) or self.attempt < 1:
            raise InvalidRequestError(f"attempt {self.attempt!r} is invalid; allowed: int >= 1")

    @property
    def statement_name(self) -> str:
        return f"{self.step_key.name_prefix}{self.attempt}"

    def client_token(self, target: RedshiftTarget) -> str:
        """64 hex chars; the target is mixed in so two warehouses never share a token."""
        text = f"{target.scope()}|{self.statement_name}"
        return hashlib.sha256(text.encode()).hexdigest()

    def cache_key(self, target: RedshiftTarget) -> str:
        """The Prefect cache key of this attempt's submit (the statement id checkpoint)."""
        return f"redshift-data-submit-{self.client_token(target)}"


def night_prefix(pipeline: str, logical_date: dt.date | str) -> str:
    """Prefix of every statement of one night: what a cancellation hook looks for."""
    return f"{_check_part(pipeline, 'pipeline')}/{_as_date(logical_date).isoformat()}/"
