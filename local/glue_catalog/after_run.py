"""The local clean job's after-success step: bring ``ext_clean_mystore`` up to date.

On AWS, Spectrum reads the clean table through the Glue Data Catalog as soon as Hudi's sync
has run. Locally the external schema is a PostgreSQL copy, so after each successful run the
stand-in (``local.warehouse.catalog_sync``) refreshes the run's table: from what the local
catalog says when there is one (the embedded default), else from the data contract. It lives
here, not in ``local/warehouse``, because it is where the catalog meets the warehouse: the
warehouse package knows no catalog implementation, only the small ``CatalogReader`` shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from local.glue_catalog.delta import register_delta_table
from local.glue_catalog.store import CatalogStore
from local.warehouse.catalog_sync import (
    DEFAULT_CATALOG_DATABASE,
    EXTERNAL_SCHEMA,
    CatalogSyncError,
    detect_format,
    refresh_from_catalog,
    sync_clean_table,
)
from local.warehouse.postgres import while_restarting


def sync_after_clean_run(
    dsn: str, arguments: Mapping[str, str], catalog: CatalogStore | None = None
) -> str:
    """The after-success step of the local ``raw2clean`` job: refresh the run's table.

    With the local catalog (the embedded default), from what the catalog says; without
    one (a Glue service started on its own), from the contract's columns.
    """
    try:
        table, clean_path = arguments["--table"], arguments["--clean_path"]
    except KeyError as exc:
        raise CatalogSyncError(f"the clean job run has no {exc.args[0]} argument to sync") from exc
    database = arguments.get("--catalog_database") or DEFAULT_CATALOG_DATABASE
    path = Path(clean_path) / table
    if catalog is None or not path.exists():
        result = while_restarting(lambda: sync_clean_table(dsn, table, Path(clean_path)))
    else:
        if detect_format(path) == "delta":
            register_delta_table(catalog, database, table, path)
        # A warehouse the stack is starting again (local.keeper) is waited for: the run's
        # table is written already, and failing it would fail the night for a restart.
        result = while_restarting(lambda: refresh_from_catalog(dsn, catalog, database, table))
    return (
        f"synced {result.rows} rows of {result.source_format} table {table} "
        f"into {EXTERNAL_SCHEMA}.{table}"
    )
