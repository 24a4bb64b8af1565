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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# The public names load on first use (PEP 562), not with the package: the local endpoint
# imports only ``migrations.sql_text`` (the statement splitter), and the runner's imports
# (tasks.redshift_data, so Prefect and prefect_aws) cost every endpoint start ~2 s of CPU.
_HOMES = {"MigrationError": "migrations.planning"} | dict.fromkeys(
    ("SQL_DIR", "Check", "Report", "format_report", "migrate"), "migrations.runner"
)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'migrations' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
