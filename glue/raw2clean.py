"""Glue job: clean one raw MyStore table for one logical date and upsert it into the clean zone.

Arguments (Glue style, ``--name value``; on AWS Glue they are resolved with
``awsglue.utils.getResolvedOptions``, elsewhere with an equivalent argparse parser)::

    --JOB_NAME raw2clean            job name (Glue always passes it; default raw2clean)
    --table store_customer          store_customer | store_customer_address | store_sale
    --raw_path <dir or s3://>       raw zone root; reads <raw_path>/<table>/ingest_date=<date>/
    --clean_path <dir or s3://>     clean zone root; the table is <clean_path>/<table>
    --quarantine_path <dir or s3://>  rejects go to <quarantine_path>/<table>/ingest_date=<date>/
    --logical_date 2026-11-25       the night being loaded (YYYY-MM-DD)
    --report_path <file or s3://>   optional: where to write the JSON report
    --max_quarantine_share 0.05     fail the run when more than this share is quarantined
    --load_type auto                auto | initial | incremental (auto: initial iff no table)
    --table_format auto             auto | hudi | delta (auto: hudi on Glue or with a jar)
    --hudi_bundle_jar <jar>         local Hudi: the Hudi Spark bundle (or $MYSTORE_HUDI_BUNDLE_JAR)
    --hudi_version 0.15             0.15 (Glue 5.0) | 1.0 (Glue 5.1); default from the jar name
    --retain_commits 10             commits (versions) of history kept by the cleaner
    --catalog_database clean_mystore  Glue database to sync to; "none" turns sync off
                                      (default: clean_mystore on Glue, none locally)
    --allow_empty_input false       true: a date with no raw partition succeeds with the
                                    verdict "no input" (default: it fails; or
                                    $MYSTORE_ALLOW_EMPTY_INPUT)
    --event_time_horizon_hours 24   rows whose event time is later than the run's time plus
                                    this are quarantined (or $MYSTORE_EVENT_TIME_HORIZON_HOURS)

The raw partition must be complete: its ``_MANIFEST.json`` (glue/manifest.py) must list
exactly its data files, sizes and row counts, else the run fails naming what differs.

Exit code 0 means SUCCEEDED, 1 a failed run, 2 bad arguments. The last line on stderr is
then ``CleanJobError: <message>`` or ``CleanJobArgumentError: <message>`` (shaped like a
Python exception line, which the local Glue service reports as the run's ErrorMessage).
The report (rows read, written, quarantined, duplicates dropped, commit id) is printed as
one ``RAW2CLEAN_REPORT {...}`` line and written to ``--report_path`` when given.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    # Run as a script (``python glue/raw2clean.py``; on Glue the ``glue`` package comes
    # from --extra-py-files): import siblings as ``glue.*``, not as top-level modules.
    _here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    sys.path.insert(0, str(Path(_here).parent))

from glue.hudi_options import LoadType
from glue.hudi_runtime import HudiRuntimeError, check_runtime
from glue.job_arguments import (
    ALLOW_EMPTY_ENV,
    JobArguments,
    awsglue_resolver,
    build_arguments,
    resolve_arguments,
)
from glue.local_spark import local_spark
from glue.manifest import (
    IncompletePartition,
    Manifest,
    check_partition,
    check_row_count,
    missing_manifest,
    parse_manifest,
    read_partition,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from glue.sinks import TableSink

REPORT_PREFIX = "RAW2CLEAN_REPORT"


class CleanJobError(Exception):
    """The run must end FAILED; the message is what Glue shows as ErrorMessage."""


def log(message: str) -> None:
    print(f"[raw2clean] {message}", flush=True)


def make_sink(spark: SparkSession, args: JobArguments) -> TableSink:
    from glue.sinks import DeltaSink, HudiSink

    if args.table_format == "hudi":
        return HudiSink(
            spark,
            args.table_path,
            args.contract,
            version=args.hudi_version,
            retain_commits=args.retain_commits,
            catalog_database=args.catalog_database,
            catalog_endpoint=args.catalog_endpoint,
            catalog_region=args.catalog_region,
        )
    return DeltaSink(args.table_path, args.contract, retain_commits=args.retain_commits)


def new_report(args: JobArguments) -> dict[str, Any]:
    return {
        "job_name": args.job_name,
        "table": args.table,
        "logical_date": args.logical_date.isoformat(),
        "table_format": args.table_format,
        "status": "SUCCEEDED",
        "rows_read": 0,
        "rows_quarantined": 0,
        "duplicates_dropped": 0,
        "rows_written": 0,
        "commit_id": None,
    }


def run(
    spark: SparkSession,
    args: JobArguments,
    report: dict[str, Any],
    sink: TableSink | None = None,
) -> dict[str, Any]:
    """Read, clean, quarantine and upsert one table for one date.

    ``report`` is filled in as the run goes, so a failed run still reports its counts.
    """
    from pyspark.sql import functions as F

    from glue.transforms import SESSION_CONF, clean_batch, raw_schema

    started = time.monotonic()
    for key, value in SESSION_CONF.items():
        spark.conf.set(key, value)
    contract = args.contract
    sink = sink or make_sink(spark, args)
    raw_dir = args.partition_path(args.raw_path)
    manifest = complete_partition(args, raw_dir, report)
    if manifest is None:
        report["elapsed_seconds"] = round(time.monotonic() - started, 3)
        return report
    etl_time = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    horizon = etl_time + timedelta(hours=args.event_time_horizon_hours)
    raw = spark.read.schema(raw_schema(contract)).option("mode", "PERMISSIVE").json(raw_dir)
    batch = clean_batch(raw, contract, etl_time, horizon=horizon)
    phases: dict[str, float] = {}
    report["phase_seconds"] = phases
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = round(now - mark, 3)
        mark = now

    typed = batch.typed.cache()
    rows_read = typed.count()
    try:
        check_row_count(manifest, rows_read, raw_dir)
    except IncompletePartition as exc:
        typed.unpersist()
        raise CleanJobError(f"{exc}; nothing committed") from exc
    quarantined = typed.where(F.col("quarantine_reason") != "").count()
    phase("read_and_type")
    report.update(rows_read=rows_read, rows_quarantined=quarantined)
    log(f"read {rows_read} row(s) of {args.table} from {raw_dir}; {quarantined} quarantined")
    if rows_read:
        quarantine_dir = args.partition_path(args.quarantine_path)
        quarantine = batch.quarantine.coalesce(1).write.mode("overwrite")
        quarantine.option("ignoreNullFields", "false").json(quarantine_dir)
        if quarantined:
            log(f"wrote {quarantined} quarantined row(s) with reasons to {quarantine_dir}")
        phase("quarantine")
    share = quarantined / rows_read if rows_read else 0.0
    report["quarantine_share"] = round(share, 6)
    if share > args.max_quarantine_share:
        typed.unpersist()
        raise CleanJobError(
            f"quarantined {quarantined} of {rows_read} rows of {args.table} "
            f"({share:.2%}), above --max_quarantine_share {args.max_quarantine_share}; "
            f"nothing committed; see {args.partition_path(args.quarantine_path)}"
        )
    clean = batch.clean.cache()
    written = clean.count()
    phase("deduplicate")
    report.update(rows_written=written, duplicates_dropped=rows_read - quarantined - written)
    if written == 0:
        log("no rows to upsert; nothing committed")
    else:
        load: LoadType
        if args.load_type == "auto":
            load = "incremental" if sink.exists() else "initial"
        else:
            load = "initial" if args.load_type == "initial" else "incremental"
        log(f"upserting {written} row(s) into {args.table_path} ({sink.table_format}, {load})")
        result = sink.write(clean, load)
        phase("commit")
        report.update(load_type=load, commit_id=result.commit_id)
        report.update(
            {k: v for k, v in asdict(result).items() if k.startswith("rows_") and v is not None}
        )
    clean.unpersist()
    typed.unpersist()
    report["elapsed_seconds"] = round(time.monotonic() - started, 3)
    return report


def complete_partition(args: JobArguments, raw_dir: str, report: dict[str, Any]) -> Manifest | None:
    """The partition's manifest once its files match it; None for an allowed empty day.

    A missing partition fails the run unless --allow_empty_input says a day without data is
    expected; then the report's ``input`` says "none" and nothing is committed.
    """
    found = read_partition(raw_dir)
    if found is None:
        if args.allow_empty_input:
            log(f"no raw partition for {args.logical_date} under {raw_dir}; allowed: no input")
            report["input"] = "none (allowed by --allow_empty_input)"
            return None
        raise CleanJobError(
            f"no raw partition for {args.logical_date} under {args.raw_path.rstrip('/')}/"
            f"{args.table} (expected {raw_dir}); pass --allow_empty_input true (or set "
            f"{ALLOW_EMPTY_ENV}=true) if a day without data is expected"
        )
    listing, text = found
    try:
        if text is None:
            raise missing_manifest(raw_dir)
        manifest = parse_manifest(text, raw_dir)
        check_partition(manifest, args.table, args.logical_date.isoformat(), listing, raw_dir)
    except IncompletePartition as exc:
        raise CleanJobError(f"{exc}; nothing committed") from exc
    report["input"] = f"complete: {manifest.rows} row(s) in {len(manifest.files)} file(s)"
    return manifest


def error_summary(exc: BaseException) -> str:
    """One line a person can act on. Py4J errors put the Java exception on their 2nd line
    and its causes in ``Caused by:`` lines below; the last cause goes first when it says
    something else, since the top is often a wrapper ("Failed to upsert for commit time
    ...") and Glue cuts a long ErrorMessage at its end."""
    if isinstance(exc, (CleanJobError, HudiRuntimeError)):
        return str(exc)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("An error occurred while calling"):
        top = lines[1].lstrip(": ")
        causes = [
            line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")
        ]
        root = causes[-1] if causes else None
        return top if root is None or root in top else f"{root} (raised as: {top})"
    return f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"


def _write_report(path: str, report: Mapping[str, Any]) -> None:
    import pyarrow.fs as pafs

    filesystem, target = pafs.FileSystem.from_uri(path if "://" in path else os.path.abspath(path))
    parent = target.rsplit("/", 1)[0]
    if parent:
        filesystem.create_dir(parent, recursive=True)
    with filesystem.open_output_stream(target) as out:
        out.write((json.dumps(report, sort_keys=True) + "\n").encode())


def _fail_before_start(args: JobArguments, error: str) -> int:
    """No Spark session: report the failure the way a failed run does (exit 1)."""
    report = new_report(args)
    report.update(status="FAILED", error=error)
    print(f"{REPORT_PREFIX} {json.dumps(report, sort_keys=True)}", flush=True)
    if args.report_path:
        _write_report(args.report_path, report)
    print(f"CleanJobError: {error}", file=sys.stderr, flush=True)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 on success, 1 on a failed run, 2 on bad arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    glue_resolver = awsglue_resolver()
    try:
        raw_args, ignored = resolve_arguments(argv, glue_resolver)
        args = build_arguments(raw_args, on_glue=glue_resolver is not None)
    except ValueError as exc:
        print(f"CleanJobArgumentError: {exc}", file=sys.stderr, flush=True)
        return 2
    if ignored:
        log(f"ignoring argument(s) not used by this job: {', '.join(ignored)}")
    job = None
    owns_session = False
    if glue_resolver is not None:
        from awsglue.context import GlueContext
        from awsglue.job import Job
        from pyspark.context import SparkContext

        glue_context = GlueContext(SparkContext.getOrCreate())
        spark = glue_context.spark_session
        job = Job(glue_context)
        job.init(args.job_name, raw_args)
    else:
        from pyspark.sql import SparkSession

        # A session that already exists (tests, notebooks) is borrowed, not stopped.
        owns_session = SparkSession.getActiveSession() is None
        try:
            spark = local_spark(
                args.job_name,
                args.table,
                args.table_format,
                args.hudi_version,
                args.hudi_bundle_jar,
            )
        except HudiRuntimeError as exc:
            return _fail_before_start(args, str(exc))
    spark.sparkContext.setLogLevel("WARN")
    log(f"{args.job_name}: {args.table} for {args.logical_date} ({args.table_format})")
    report = new_report(args)
    error: str | None = None
    try:
        if args.table_format == "hudi":
            release = check_runtime(spark, args.hudi_version, args.glue_version)
            log(f"Hudi {release} (options for {args.hudi_version})")
        run(spark, args, report)
        if job is not None:
            job.commit()
    except Exception as exc:  # the run fails; the report and the last stderr line say why
        if not isinstance(exc, (CleanJobError, HudiRuntimeError)):
            traceback.print_exc()
        error = error_summary(exc)
        report.update(status="FAILED", error=error)
    finally:
        if owns_session:
            spark.stop()
    line = json.dumps(report, sort_keys=True)
    print(f"{REPORT_PREFIX} {line}", flush=True)
    if args.report_path:
        _write_report(args.report_path, report)
    if error is not None:
        print(f"CleanJobError: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
