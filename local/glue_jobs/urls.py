"""Where Glue job runs are served: on an AwsEndpoint, under botocore's target prefix
``AWSGlue`` (moto's urls.py says the same for its URL patterns)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from local.endpoint import AwsEndpoint
from local.glue_jobs.jobs import JobDefinition, default_jobs
from local.glue_jobs.responses import GlueService
from local.glue_jobs.runs import RunStore
from local.glue_jobs.warm_pool import DriverPool


def register_glue(
    endpoint: AwsEndpoint,
    *,
    pg_dsn: str | None,
    data_dir: Path,
    jobs: Mapping[str, JobDefinition] | None = None,
    seconds_per_minute: float = 60.0,
    warm_drivers: DriverPool | None = None,
) -> GlueService:
    """Serve the Glue job-run operations on ``endpoint``; call ``.close()`` on shutdown.

    Runs are kept in ``local_glue.job_runs`` when ``pg_dsn`` is given; run logs go to
    ``<data_dir>/glue/logs/<job>/<run id>.log``. ``warm_drivers`` shares a pool of warm
    Spark drivers between services (the caller closes it); by default the service has its own.
    """
    data_dir = Path(data_dir)
    service = GlueService(
        jobs if jobs is not None else default_jobs(data_dir, pg_dsn),
        log_dir=data_dir / "glue" / "logs",
        store=RunStore(pg_dsn),
        seconds_per_minute=seconds_per_minute,
        warm_drivers=warm_drivers,
    )
    endpoint.register(service.target_prefix, service)
    return service
