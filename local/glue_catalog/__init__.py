"""The local Glue Data Catalog (see docs/glue-local.md).

``attach_glue_catalog`` serves the catalog operations on the endpoint's ``AWSGlue`` target
next to the local job runs, and points the local clean job at it: the job's Hudi sync
(``AwsGlueCatalogSyncTool``) gets ``--catalog_endpoint`` (-> ``hoodie.aws.glue.endpoint``)
and, after a successful run, the Spectrum stand-in refreshes ``ext_clean_mystore`` from what
the catalog then says. Any boto3 Glue client (``aws glue get-tables``, awswrangler) reads
the same catalog through ``AWS_ENDPOINT_URL_GLUE``.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from local.endpoint import AwsEndpoint
from local.glue_catalog.service import CatalogRouter, GlueCatalogService
from local.glue_catalog.store import CatalogStore

__all__ = ["CatalogRouter", "CatalogStore", "GlueCatalogService", "attach_glue_catalog"]

TARGET_PREFIX = "AWSGlue"
CLEAN_JOB = "raw2clean"
LOCAL_REGION = "us-east-1"


def catalog_path(data_dir: Path) -> Path:
    return Path(data_dir) / "glue" / "catalog.json"


def attach_glue_catalog(
    endpoint: AwsEndpoint,
    *,
    data_dir: Path,
    glue_service: Any | None = None,
    pg_dsn: str | None = None,
) -> GlueCatalogService:
    """Serve the catalog on ``endpoint`` and wire the local clean job to it.

    ``glue_service`` (a ``local.glue_jobs.GlueService``, if one is registered) gets its
    clean job's definition replaced: the catalog endpoint in its default arguments and the
    catalog-driven Spectrum refresh as its after-success step.
    """
    from local.glue_catalog.after_run import sync_after_clean_run

    store = CatalogStore(catalog_path(data_dir))
    catalog = GlueCatalogService(store)
    endpoint.register(TARGET_PREFIX, CatalogRouter(catalog, endpoint.services.get(TARGET_PREFIX)))
    jobs = getattr(glue_service, "jobs", None)
    if jobs is not None and CLEAN_JOB in jobs:
        job = jobs[CLEAN_JOB]
        jobs[CLEAN_JOB] = replace(
            job,
            default_arguments={
                **job.default_arguments,
                "--catalog_endpoint": endpoint.url,
                "--catalog_region": LOCAL_REGION,
            },
            after_success=partial(sync_after_clean_run, pg_dsn, catalog=store) if pg_dsn else None,
        )
    return catalog
