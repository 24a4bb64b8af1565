"""The local Glue job-run service (see docs/glue-local.md).

``register_glue`` is what the local stack calls: it builds the local job registry for a
data dir, persists runs in the warehouse, and registers the service on the endpoint under
``AWSGlue``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path

from local.catalog_sync import sync_after_clean_run
from local.endpoint import AwsEndpoint
from local.glue_service.jobs import REPO_ROOT, JobDefinition
from local.glue_service.runs import RunRecord, RunStore
from local.glue_service.service import GlueService

__all__ = [
    "GlueService",
    "JobDefinition",
    "RunRecord",
    "RunStore",
    "default_jobs",
    "register_glue",
]

CLEAN_JOB = "raw2clean"


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
        )
    }


def register_glue(
    endpoint: AwsEndpoint,
    *,
    pg_dsn: str | None,
    data_dir: Path,
    jobs: Mapping[str, JobDefinition] | None = None,
    seconds_per_minute: float = 60.0,
) -> GlueService:
    """Serve the Glue job-run operations on ``endpoint``; call ``.close()`` on shutdown.

    Runs are kept in ``local_glue.job_runs`` when ``pg_dsn`` is given; run logs go to
    ``<data_dir>/glue/logs/<job>/<run id>.log``.
    """
    data_dir = Path(data_dir)
    service = GlueService(
        jobs if jobs is not None else default_jobs(data_dir, pg_dsn),
        log_dir=data_dir / "glue" / "logs",
        store=RunStore(pg_dsn),
        seconds_per_minute=seconds_per_minute,
    )
    endpoint.register("AWSGlue", service)
    return service
