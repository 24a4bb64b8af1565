"""Glue job runs on the local endpoint (see docs/glue-local.md).

Laid out as moto lays out a service: ``urls.py`` (``register_glue``: where it is served),
``responses.py`` (the HTTP mapping), ``requests.py`` (rules the botocore model cannot
express), ``models.py`` (the backend: runs as child processes), ``exceptions.py``; job
definitions are in ``jobs.py`` and run records in ``runs.py``.
"""

from local.glue_jobs.jobs import JobDefinition, default_jobs
from local.glue_jobs.models import GlueJobsBackend
from local.glue_jobs.responses import GlueService
from local.glue_jobs.runs import RunRecord, RunStore
from local.glue_jobs.urls import register_glue

__all__ = [
    "GlueJobsBackend",
    "GlueService",
    "JobDefinition",
    "RunRecord",
    "RunStore",
    "default_jobs",
    "register_glue",
]
