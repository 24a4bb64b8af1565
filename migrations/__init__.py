"""Apply sql/ to a warehouse through the Redshift Data API: plan, split, run.

``python -m migrations`` is the command (``migrations.cli``). From Python::

    from migrations import migrate
    migrate(client, target, parameters={...}, check=...)

with an injected ``redshift-data`` client, a target that names its connection fields
(a ``tasks.redshift_data.RedshiftTarget``, saved or not) and, for an engine other
than Redshift, a pre-flight ``check`` of each statement (that warehouse's Data API
translates the Redshift SQL it is sent). It runs its statements through ``tasks.redshift_data``'s
plain layer and imports nothing of flows/ or local/ (checked by ``lint-imports``).
"""

from migrations.planning import MigrationError
from migrations.runner import SQL_DIR, Check, Report, format_report, migrate

__all__ = [
    "SQL_DIR",
    "Check",
    "MigrationError",
    "Report",
    "format_report",
    "migrate",
]
