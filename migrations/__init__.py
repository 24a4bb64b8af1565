"""Apply sql/ to a warehouse through the Redshift Data API: plan, split, run.

``python -m migrations`` is the command (``migrations.cli``). From Python::

    from migrations import migrate
    migrate(client, target, parameters={...}, check=...)

with an injected ``redshift-data`` client, a target that names its connection fields
(``WarehouseTarget`` or ``tasks.redshift_data.RedshiftTarget``) and, for an engine other
than Redshift, a pre-flight ``check`` of each statement (that warehouse's Data API
translates the Redshift SQL it is sent). This package imports nothing of flows/, tasks/ or
local/ (checked by ``lint-imports``).
"""

from migrations.data_api import DataApiTarget, StatementFailedError, WarehouseTarget
from migrations.planning import MigrationError
from migrations.runner import SQL_DIR, Check, Report, format_report, migrate

__all__ = [
    "SQL_DIR",
    "Check",
    "DataApiTarget",
    "MigrationError",
    "Report",
    "StatementFailedError",
    "WarehouseTarget",
    "format_report",
    "migrate",
]
