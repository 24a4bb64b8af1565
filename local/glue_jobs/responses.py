"""Glue's job-run operations on the HTTP side: one method per operation.

Every request reaching a method has passed botocore's input shape (``ModeledService``);
requests.py adds Glue's own rules, models.py runs the jobs, and the shapes here are the
members botocore's output shapes name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local.core import Call, ModeledService
from local.glue_jobs.jobs import JobDefinition
from local.glue_jobs.models import GlueJobsBackend
from local.glue_jobs.requests import require_job, validate_start_request
from local.glue_jobs.runs import RunStore, page_of_runs


def job_shape(job: JobDefinition, created_on: float) -> dict[str, Any]:
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


class GlueService(ModeledService):
    """``AWSGlue.*`` job-run calls over a GlueJobsBackend built from ``jobs``.

    Keyword arguments go to the backend (``log_dir``, ``store``, ``seconds_per_minute``,
    ``stop_grace_seconds``, ``environ``, ...); ``close()`` stops every active run.
    """

    service_name = "glue"

    def __init__(self, jobs: Mapping[str, JobDefinition], **backend: Any) -> None:
        super().__init__()
        self.backend = GlueJobsBackend(jobs, **backend)

    @property
    def jobs(self) -> dict[str, JobDefinition]:
        """The job definitions by name (mutable: the catalog wiring replaces the clean job's)."""
        return self.backend.jobs

    @property
    def store(self) -> RunStore:
        return self.backend.store

    def close(self, timeout: float = 30.0) -> None:
        self.backend.close(timeout)

    def prewarm(self, job_name: str, arguments: Mapping[str, str]) -> bool:
        """Start the warm Spark driver such a run would use, without waiting (see models)."""
        return self.backend.prewarm(job_name, arguments)

    def get_job(self, call: Call) -> Mapping[str, Any]:
        job = require_job(self.backend.jobs, call.body["JobName"])
        return {"Job": job_shape(job, self.backend.created_on)}

    def start_job_run(self, call: Call) -> Mapping[str, Any]:
        run = self.backend.start(validate_start_request(call.body, self.backend.jobs))
        return {"JobRunId": run.id}

    def get_job_run(self, call: Call) -> Mapping[str, Any]:
        job = require_job(self.backend.jobs, call.body["JobName"])
        run = self.backend.run(job.name, call.body["RunId"])
        return {"JobRun": self.backend.api_view([run])[0]}

    def get_job_runs(self, call: Call) -> Mapping[str, Any]:
        job = require_job(self.backend.jobs, call.body["JobName"])
        runs = self.backend.store.for_job(job.name)
        page, token = page_of_runs(runs, call.body.get("NextToken"), call.body.get("MaxResults"))
        answer: dict[str, Any] = {"JobRuns": self.backend.api_view(page)}
        if token is not None:
            answer["NextToken"] = token
        return answer

    def batch_stop_job_run(self, call: Call) -> Mapping[str, Any]:
        job_name = call.body["JobName"]
        stopped: list[dict[str, str]] = []
        errors: list[dict[str, Any]] = []
        for run_id in call.body["JobRunIds"]:
            outcome = self.backend.request_stop(job_name, run_id)
            if outcome is None:
                stopped.append({"JobName": job_name, "JobRunId": run_id})
            else:
                code, message = outcome
                errors.append(
                    {
                        "JobName": job_name,
                        "JobRunId": run_id,
                        "ErrorDetail": {"ErrorCode": code, "ErrorMessage": message},
                    }
                )
        return {"SuccessfulSubmissions": stopped, "Errors": errors}
