"""Glue's modeled errors, as the local endpoint answers them (Glue's input error is
InvalidInputException; it has no ValidationException)."""

from __future__ import annotations

from local.core import ServiceError


def invalid_input(message: str) -> ServiceError:
    return ServiceError("InvalidInputException", message)


def entity_not_found(message: str) -> ServiceError:
    return ServiceError("EntityNotFoundException", message)


def run_not_found(job_name: str, run_id: str) -> ServiceError:
    return entity_not_found(f"Job run {run_id} not found for job {job_name}")


def concurrent_runs_exceeded(job_name: str, active: int, limit: int) -> ServiceError:
    return ServiceError(
        "ConcurrentRunsExceededException",
        f"Concurrent runs exceeded for {job_name}: {active} active, MaxConcurrentRuns is {limit}",
    )


def shutting_down() -> ServiceError:
    return ServiceError("InternalServiceException", "The local Glue endpoint is shutting down")
