"""Where the Data API is served: on an AwsEndpoint, under botocore's target prefix
``RedshiftData`` (moto's urls.py says the same for its URL patterns)."""

from __future__ import annotations

from collections.abc import Callable

from local.endpoint import AwsEndpoint
from local.redshift_data.executor import DEFAULT_PAGE_ROWS
from local.redshift_data.models import DEFAULT_MAX_ACTIVE_STATEMENTS, RedshiftDataBackend
from local.redshift_data.responses import RedshiftDataService


def serve_redshift_data(
    endpoint: AwsEndpoint,
    dsn_for: Callable[[str], str],
    *,
    database_dsn: str,
    max_active_statements: int = DEFAULT_MAX_ACTIVE_STATEMENTS,
    page_rows: int = DEFAULT_PAGE_ROWS,
    warehouse_down_reason: Callable[[], str | None] | None = None,
) -> RedshiftDataBackend:
    """Serve the Data API on ``endpoint``; returns the backend (``close()`` it on shutdown).
    ``warehouse_down_reason`` says why the warehouse is down for good (None while it runs)."""
    backend = RedshiftDataBackend(
        dsn_for,
        database_dsn=database_dsn,
        max_active_statements=max_active_statements,
        page_rows=page_rows,
        warehouse_down_reason=warehouse_down_reason,
    )
    service = RedshiftDataService(backend)
    endpoint.register(service.target_prefix, service)
    return backend
