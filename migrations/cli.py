"""``python -m migrations``: apply sql/ to the warehouse the settings and environment name.

Which warehouse, first match wins:

1. ``AWS_ENDPOINT_URL_REDSHIFT_DATA`` is set: that Data API endpoint (for example the one
   ``python -m local serve`` prints). Nothing is started and the variable is left alone.
2. ``MYSTORE_TARGET=aws``: Redshift, through the credentials block or the default chain.
3. Otherwise the embedded default: the local warehouse under ``--data-dir``, started for
   the run and stopped after it.

Only the warehouse settings are read and validated (``WarehouseSettings``): no zone paths,
no Glue job. The embedded warehouse and the PostgreSQL dialect adapter live in ``local/``,
which this package never imports at module level; ``_embedded_warehouse`` and
``_local_dialect`` import it lazily, only when the run needs it. Those two imports are the
documented exception in the import contract (pyproject.toml, ``[tool.importlinter]``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from migrations.planning import MigrationError
from migrations.runner import (
    DEFAULT_HISTORY_TABLE,
    SQL_DIR,
    Check,
    detect_dialect,
    format_report,
    migrate,
    warehouse_version,
)
from migrations.settings import (
    ENDPOINT_VARIABLE,
    WarehouseSettings,
    data_api_endpoint,
    describe_validation_error,
)

if TYPE_CHECKING:
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m migrations",
        description=(
            "Apply sql/ to the warehouse through the Redshift Data API. Versioned files"
            " (V<n>__*.sql) apply once, in order; repeatable files (R__*.sql: views,"
            " procedures) re-apply when they change; each file with its history row in one"
            " transaction where Redshift allows it. The warehouse: the endpoint in"
            f" {ENDPOINT_VARIABLE} when set; else MYSTORE_TARGET=aws with"
            " MYSTORE_CLUSTER_IDENTIFIER or MYSTORE_WORKGROUP_NAME for Redshift; else the"
            " embedded local warehouse, started for the run."
        ),
        epilog=(
            "Example: python -m migrations --dry-run. Exit status: 0 applied (or nothing to"
            " do), 1 a migration failed, 2 bad arguments or settings."
        ),
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be applied")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="clear history rows an interrupted run left unfinished, then migrate",
    )
    parser.add_argument("--sql-dir", type=Path, default=SQL_DIR, help="default: %(default)s")
    parser.add_argument(
        "--dialect",
        choices=["auto", "redshift", "postgres"],
        default="auto",
        help="auto asks the database (select version()); postgres uses the local dialect adapter",
    )
    parser.add_argument(
        "--glue-database",
        default=os.environ.get("MYSTORE_GLUE_DATABASE"),
        help="Glue Data Catalog database behind ext_clean_mystore (MYSTORE_GLUE_DATABASE)",
    )
    parser.add_argument(
        "--iam-role-arn",
        default=os.environ.get("MYSTORE_IAM_ROLE_ARN"),
        help="IAM role Spectrum assumes for ext_clean_mystore (MYSTORE_IAM_ROLE_ARN)",
    )
    parser.add_argument(
        "--history-table", default=DEFAULT_HISTORY_TABLE, help="default: %(default)s"
    )
    parser.add_argument(
        "--data-dir",
        help=(
            "embedded default only: where the local warehouse lives (default:"
            " MYSTORE_LOCAL_DATA_DIR, else .local)"
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = WarehouseSettings(**({"local_data_dir": args.data_dir} if args.data_dir else {}))
    except ValidationError as exc:
        print(f"Invalid settings: {describe_validation_error(exc)}", file=sys.stderr)
        return EXIT_USAGE
    given = {"glue_database": args.glue_database, "iam_role_arn": args.iam_role_arn}
    parameters = {k: v for k, v in given.items() if v}
    try:
        with ExitStack() as resources:
            endpoint = data_api_endpoint()
            target = settings.warehouse_target()
            if endpoint is not None:
                print(f"Data API endpoint from {ENDPOINT_VARIABLE}: {endpoint}")
                client = target.data_api_client()
            elif settings.target == "aws":
                client = target.data_api_client()
            else:
                data_dir = settings.local_data_dir.expanduser().resolve()
                print(f"Embedded warehouse in {data_dir} (started for this run)")
                client = resources.enter_context(_embedded_warehouse(data_dir))
            dialect = args.dialect
            if dialect == "auto":
                dialect = detect_dialect(warehouse_version(client, target))
            check: Check | None = None
            if dialect == "postgres":
                check, defaults = _local_dialect()
                parameters = {**defaults, **parameters}
            print(f"dialect: {dialect}")
            report = migrate(
                client,
                target,
                args.sql_dir,
                parameters=parameters,
                check=check,
                dry_run=args.dry_run,
                repair=args.repair,
                history_table=args.history_table,
            )
    except (MigrationError, ClientError, BotoCoreError) as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(format_report(report))
    return EXIT_OK


@contextmanager
def _embedded_warehouse(data_dir: Path) -> Iterator[RedshiftDataAPIServiceClient]:
    """The embedded warehouse behind a local Data API endpoint, for this run only.

    Import-contract exception: the lazy import of ``local`` is the CLI entry point's.
    """
    from local.stack import LocalStack

    with LocalStack.start(data_dir, with_glue=False) as stack:
        env = stack.client_env()  # dummy keys unless the user has credentials of their own
        session = boto3.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
            region_name=env["AWS_REGION"],
        )
        yield session.client("redshift-data", endpoint_url=stack.endpoint_url)


def _local_dialect() -> tuple[Check, dict[str, str]]:
    """The local pre-flight check (the Redshift gate and the dialect adapter, as the local
    Data API applies them) and the parameters the adapter makes irrelevant.

    Import-contract exception: the lazy import of ``local`` is the CLI entry point's.
    """
    from local.warehouse.dialect import LOCAL_MIGRATION_PARAMETERS
    from local.warehouse.redshift_compat import preflight

    return preflight, dict(LOCAL_MIGRATION_PARAMETERS)
