"""What makes the pipeline run somewhere: Prefect deployment helpers (``prefect.yaml`` is at
the repository root), later the Step Functions export and the Glue job's AWS resources.

Migrations are not deployments: they live in ``migrations/``.
"""
