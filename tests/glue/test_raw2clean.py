"""The job's entry point: its argument contract, and whole runs on generated raw data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from glue.job_arguments import HUDI_JAR_ENV, build_arguments, resolve_arguments
from glue.raw2clean import REPORT_PREFIX, CleanJobError, error_summary, main
from local.sample_data import GenerateConfig, generate, write_partition
from tests.conftest import small_tmpfs
from tests.glue.conftest import run_clean_job, warm_clean_job

# Whole runs use the session's in-process Spark or its warm Hudi driver.
pytestmark = pytest.mark.spark
REPO = Path(__file__).resolve().parents[2]
TABLES = ("store_customer_address", "store_customer", "store_sale")
START = date(2026, 11, 1)
# In-process runs borrow the test session, which has no Hudi jars: they test the job's
# logic on the Delta fallback; Hudi runs go through the local Glue service's warm driver.
DELTA = ("--table_format", "delta")


def required(**overrides: str) -> dict[str, str | None]:
    base: dict[str, str | None] = {
        "table": "store_sale",
        "raw_path": "s3://raw-bucket/raw",
        "clean_path": "s3://clean-bucket/clean",
        "quarantine_path": "s3://raw-bucket/quarantine",
        "logical_date": "2026-11-25",
    }
    return base | overrides


def test_defaults_for_a_local_run() -> None:
    args = build_arguments(required(), on_glue=False, env={})
    assert (args.job_name, args.table_format, args.load_type, args.max_quarantine_share) == (
        "raw2clean",
        "hudi",
        "auto",
        0.05,
    )
    assert (args.retain_commits, args.catalog_database, args.report_path) == (10, None, None)
    assert (args.hudi_version, args.hudi_bundle_jar, args.glue_version) == ("0.15", None, None)
    assert args.table_path == "s3://clean-bucket/clean/store_sale"
    assert (
        args.partition_path(args.raw_path)
        == "s3://raw-bucket/raw/store_sale/ingest_date=2026-11-25"
    )


def test_on_glue_the_table_is_hudi_and_synced_to_the_catalog() -> None:
    args = build_arguments(required(JOB_NAME="nightly-clean"), on_glue=True, env={})
    assert (args.job_name, args.table_format, args.hudi_version, args.catalog_database) == (
        "nightly-clean",
        "hudi",
        "0.15",
        "clean_mystore",
    )
    glue51 = build_arguments(required(hudi_version="1.0.2", catalog_database="none"), on_glue=True)
    assert (glue51.hudi_version, glue51.catalog_database) == ("1.0", None)


def test_delta_is_the_explicit_local_fallback() -> None:
    args = build_arguments(required(), on_glue=False, env={"MYSTORE_LOCAL_TABLE_FORMAT": "delta"})
    assert (args.table_format, args.catalog_database) == ("delta", None)
    on_glue = build_arguments(required(), on_glue=True, env={"MYSTORE_LOCAL_TABLE_FORMAT": "delta"})
    assert on_glue.table_format == "hudi"
    with pytest.raises(ValueError) as info:
        build_arguments(required(), on_glue=False, env={"MYSTORE_LOCAL_TABLE_FORMAT": "orc"})
    assert str(info.value) == (
        "--MYSTORE_LOCAL_TABLE_FORMAT 'orc' is not allowed; expected one of: hudi, delta"
    )


def test_a_local_catalog_endpoint_turns_on_catalog_sync_to_it() -> None:
    args = build_arguments(
        required(catalog_endpoint="http://127.0.0.1:4566", catalog_region="us-east-1"),
        on_glue=False,
        env={},
    )
    assert (args.catalog_database, args.catalog_endpoint, args.catalog_region) == (
        "clean_mystore",
        "http://127.0.0.1:4566",
        "us-east-1",
    )


def test_the_glue_version_picks_the_hudi_options_and_is_checked() -> None:
    assert build_arguments(required(glue_version="5.1"), on_glue=True).hudi_version == "1.0"
    assert build_arguments(required(glue_version="5.0"), on_glue=True).hudi_version == "0.15"
    with pytest.raises(ValueError) as info:
        build_arguments(required(glue_version="3.0"), on_glue=True)
    assert str(info.value) == "unsupported --glue_version '3.0'; expected one of: 4.0, 5.0, 5.1"


def test_a_configured_bundle_jar_selects_hudi_and_its_version() -> None:
    env = {HUDI_JAR_ENV: "/opt/jars/hudi-spark3.5-bundle_2.12-1.0.2.jar"}
    args = build_arguments(required(), on_glue=False, env=env)
    assert (args.table_format, args.hudi_version, args.hudi_bundle_jar) == (
        "hudi",
        "1.0",
        "/opt/jars/hudi-spark3.5-bundle_2.12-1.0.2.jar",
    )
    assert (
        build_arguments(required(table_format="delta"), on_glue=False, env=env).table_format
        == "delta"
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"table": "store_returns"},
            "unknown clean table 'store_returns'; expected one of: store_customer, store_customer_address, store_sale",
        ),
        ({"logical_date": "25/11/2026"}, "--logical_date '25/11/2026' is not a YYYY-MM-DD date"),
        ({"max_quarantine_share": "lots"}, "--max_quarantine_share 'lots' is not a number"),
        ({"max_quarantine_share": "1.5"}, "--max_quarantine_share '1.5' must be between 0 and 1"),
        ({"retain_commits": "0"}, "--retain_commits '0' must be a whole number >= 1"),
        (
            {"load_type": "full"},
            "--load_type 'full' is not allowed; expected one of: auto, initial, incremental",
        ),
        (
            {"table_format": "iceberg"},
            "--table_format 'iceberg' is not allowed; expected one of: auto, hudi, delta",
        ),
        ({"raw_path": ""}, "missing required argument(s): --raw_path"),
        (
            {"allow_empty_input": "maybe"},
            "--allow_empty_input 'maybe' is not allowed; expected one of: true, false",
        ),
        (
            {"event_time_horizon_hours": "-1"},
            "--event_time_horizon_hours '-1' must be a number of hours from 0 to 8784",
        ),
    ],
)
def test_bad_arguments_name_the_value_and_what_is_allowed(
    overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError) as info:
        build_arguments(required(**overrides), on_glue=False, env={})
    assert str(info.value) == message


def test_input_settings_default_to_strict_and_read_the_environment() -> None:
    strict = build_arguments(required(), on_glue=True, env={})
    assert (strict.allow_empty_input, strict.event_time_horizon_hours) == (False, 24.0)
    env = {"MYSTORE_ALLOW_EMPTY_INPUT": "true", "MYSTORE_EVENT_TIME_HORIZON_HOURS": "2"}
    relaxed = build_arguments(required(), on_glue=True, env=env)
    assert (relaxed.allow_empty_input, relaxed.event_time_horizon_hours) == (True, 2.0)
    given = build_arguments(required(allow_empty_input="false"), on_glue=True, env=env)
    assert given.allow_empty_input is False  # the job argument wins


def test_glue_resolution_asks_for_required_and_present_optional_names() -> None:
    calls: list[tuple[list[str], list[str]]] = []

    def fake_get_resolved_options(argv: list[str], names: list[str]) -> dict[str, str]:
        calls.append((argv, names))
        return {"JOB_NAME": "raw2clean", "table": "store_sale"}

    argv = ["--JOB_NAME", "raw2clean", "--table", "store_sale", "--report_path", "s3://r/x.json"]
    resolved, ignored = resolve_arguments(argv, fake_get_resolved_options)
    assert resolved == {"JOB_NAME": "raw2clean", "table": "store_sale"}
    assert ignored == []
    assert calls == [
        (
            ["raw2clean.py", *argv],
            [
                "table",
                "raw_path",
                "clean_path",
                "quarantine_path",
                "logical_date",
                "JOB_NAME",
                "report_path",
            ],
        )
    ]


def test_local_resolution_ignores_glue_system_arguments() -> None:
    resolved, ignored = resolve_arguments(
        [
            "--table",
            "store_sale",
            "--job-bookmark-option",
            "job-bookmark-disable",
            "--TempDir",
            "/t",
        ],
        None,
    )
    assert resolved["table"] == "store_sale"
    assert resolved["raw_path"] is None
    assert ignored == ["--job-bookmark-option", "--TempDir"]


def test_error_summary_is_one_actionable_line() -> None:
    assert error_summary(CleanJobError("quarantined 9 of 10 rows")) == "quarantined 9 of 10 rows"
    py4j_text = (
        "An error occurred while calling o1308.save.\n: java.io.IOException: disk full\n\tat x"
    )
    assert error_summary(RuntimeError(py4j_text)) == "java.io.IOException: disk full"
    assert error_summary(KeyError("sale_date")) == "KeyError: 'sale_date'"


def test_error_summary_leads_with_the_root_cause_of_a_java_error() -> None:
    """A clean run on a full disk said only "HoodieUpsertException: Failed to upsert for
    commit time ..."; the cause was 50 lines further down (the text is that run's error)."""
    text = (Path(__file__).parent / "fixtures" / "py4j_no_space_left.txt").read_text()
    assert error_summary(RuntimeError(text)) == (
        "java.io.IOException: No space left on device (raised as: "
        "org.apache.hudi.exception.HoodieUpsertException: Failed to upsert for commit time "
        "20261204001138178)"
    )


def test_error_summary_keeps_a_wrapper_that_already_names_the_cause() -> None:
    """Hadoop's FSError carries the IOException's text: the top line says it all."""
    text = (
        "An error occurred while calling o912.save.\n"
        ": org.apache.hadoop.fs.FSError: java.io.IOException: No space left on device\n"
        "\tat org.apache.hadoop.fs.RawLocalFileSystem$LocalFSFileOutputStream.write\n"
        "Caused by: java.io.IOException: No space left on device\n"
        "\tat java.base/java.io.FileOutputStream.writeBytes(Native Method)\n"
    )
    assert error_summary(RuntimeError(text)) == (
        "org.apache.hadoop.fs.FSError: java.io.IOException: No space left on device"
    )


def test_bad_arguments_exit_2_without_starting_spark() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "glue/raw2clean.py",
            "--table",
            "store_sale",
            "--logical_date",
            "tomorrow",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "CleanJobArgumentError: missing required argument(s): --raw_path, --clean_path, --quarantine_path"
    )


# -- whole runs -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("sample")
    config = GenerateConfig(days=2, customers=150, sales_per_day=300, seed=7, start_date=START)
    return out, generate(config, out)


def job_argv(sample_dir: Path, work: Path, table: str, day: str, *extra: str) -> list[str]:
    return [
        "--JOB_NAME", "raw2clean",
        "--table", table,
        "--raw_path", str(sample_dir / "raw"),
        "--clean_path", str(work / "clean"),
        "--quarantine_path", str(work / "quarantine"),
        "--logical_date", day,
        "--report_path", str(work / "reports" / f"{table}-{day}.json"),
        *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_two_nights_end_to_end_match_the_truth_file(
    spark: SparkSession,
    sample: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sample_dir, truth = sample
    for night in truth["days"]:
        for table in TABLES:
            argv = job_argv(sample_dir, tmp_path, table, night["date"], "--table_format", "delta")
            assert main(argv) == 0
            report = json.loads(
                (tmp_path / "reports" / f"{table}-{night['date']}.json").read_text()
            )
            expected = night["tables"][table]
            assert report["status"] == "SUCCEEDED"
            assert (
                report["rows_read"],
                report["rows_quarantined"],
                report["duplicates_dropped"],
                report["rows_written"],
                report["rows_ignored_older"],
            ) == (
                expected["raw_rows"],
                expected["quarantined"],
                expected["duplicates_dropped"],
                expected["rows_written"],
                expected["stale_ignored"],
            ), (table, night["date"])
            clean = DeltaTable(str(tmp_path / "clean" / table)).to_pyarrow_table()
            assert clean.num_rows == expected["clean_rows"], (table, night["date"])
    printed = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith(REPORT_PREFIX)
    ]
    assert len(printed) == 6
    assert json.loads(printed[-1].removeprefix(REPORT_PREFIX)) == report

    customers = (
        DeltaTable(str(tmp_path / "clean" / "store_customer")).to_pyarrow_table().to_pylist()
    )
    assert {r["customer_id"]: r["address_id"] for r in customers} == truth["final_customer_address"]
    assert {
        r["customer_id"]: r["customer_datetime"].strftime("%Y-%m-%d %H:%M:%S") for r in customers
    } == truth["final_customer_datetime"]
    assert all(r["customer_date"] == r["customer_datetime"].date() for r in customers)
    quarantine = tmp_path / "quarantine" / "store_sale" / f"ingest_date={START}"
    lines = [
        json.loads(x) for f in quarantine.glob("part-*.json") for x in f.read_text().splitlines()
    ]
    assert len(lines) == truth["days"][0]["tables"]["store_sale"]["quarantined"]
    assert all(line["quarantine_reason"] for line in lines)


@pytest.mark.slow
def test_a_day_without_raw_data_fails_unless_no_input_is_allowed(
    spark: SparkSession, sample: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    sample_dir, _ = sample
    assert main(job_argv(sample_dir, tmp_path, "store_sale", "2026-12-25", *DELTA)) == 1
    report = json.loads((tmp_path / "reports" / "store_sale-2026-12-25.json").read_text())
    assert report["status"] == "FAILED"
    assert report["error"].startswith(
        f"no raw partition for 2026-12-25 under {sample_dir / 'raw'}/store_sale"
    )
    argv = job_argv(
        sample_dir, tmp_path, "store_sale", "2026-12-25", *DELTA, "--allow_empty_input", "true"
    )
    assert main(argv) == 0
    report = json.loads((tmp_path / "reports" / "store_sale-2026-12-25.json").read_text())
    assert (report["status"], report["rows_read"], report["commit_id"]) == ("SUCCEEDED", 0, None)
    assert report["input"] == "none (allowed by --allow_empty_input)"
    assert not (tmp_path / "clean" / "store_sale").exists()
    # A deliberately empty partition (a manifest listing an empty file) is complete.
    write_partition(
        sample_dir / "raw" / "store_sale" / "ingest_date=2026-12-26",
        "store_sale",
        date(2026, 12, 26),
        [],
    )
    assert main(job_argv(sample_dir, tmp_path, "store_sale", "2026-12-26", *DELTA)) == 0
    report = json.loads((tmp_path / "reports" / "store_sale-2026-12-26.json").read_text())
    assert (report["rows_read"], report["rows_written"], report["commit_id"]) == (0, 0, None)
    assert not (tmp_path / "clean" / "store_sale").exists()


@pytest.mark.slow
def test_a_half_written_partition_fails_and_commits_nothing(
    spark: SparkSession, sample: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """The disk filled while the partition was written: the file is cut, the manifest stale."""
    sample_dir, truth = sample
    copy = tmp_path / "raw"
    day = truth["days"][0]["date"]
    source = sample_dir / "raw" / "store_sale" / f"ingest_date={day}"
    target = copy / "store_sale" / f"ingest_date={day}"
    target.mkdir(parents=True)
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    data = target / "part-00000.json"
    lines = data.read_bytes().splitlines(keepends=True)
    data.write_bytes(b"".join(lines[: len(lines) * 2 // 3]))
    argv = job_argv(sample_dir, tmp_path, "store_sale", day, *DELTA, "--raw_path", str(copy))
    assert main(argv) == 1
    report = json.loads((tmp_path / "reports" / f"store_sale-{day}.json").read_text())
    assert report["error"].startswith(f"raw partition {target} is incomplete: part-00000.json has")
    assert not (tmp_path / "clean" / "store_sale").exists()
    (target / "_MANIFEST.json").unlink()  # and without any manifest
    assert main(argv) == 1
    report = json.loads((tmp_path / "reports" / f"store_sale-{day}.json").read_text())
    assert "has no _MANIFEST.json" in report["error"]


@pytest.mark.slow
def test_quarantine_above_the_threshold_fails_after_writing_the_rejects(
    sample: tuple[Path, dict[str, Any]], tmp_path: Path, warm_spark_drivers: Any
) -> None:
    """Run as the local Glue service runs it: the job's ``main`` in the session's warm
    driver (no JVM of its own), its exit code and the error line becoming the run's FAILED
    state and ErrorMessage. The script's own exit path (``python glue/raw2clean.py``, as
    Glue on AWS starts it) is shown by the offline and bad-argument tests."""
    sample_dir, truth = sample
    day = truth["days"][0]
    argv = job_argv(
        sample_dir, tmp_path, "store_customer", day["date"], "--max_quarantine_share", "0.001"
    )
    arguments = dict(zip(argv[2::2], argv[3::2], strict=True))  # without --JOB_NAME
    with warm_clean_job(tmp_path, warm_spark_drivers) as service:
        run, log = run_clean_job(service, arguments, 900, expect="FAILED")
    expected = day["tables"]["store_customer"]
    bad, total = expected["quarantined"], expected["raw_rows"]
    message = (
        f"quarantined {bad} of {total} rows of store_customer ({bad / total:.2%}), above "
        f"--max_quarantine_share 0.001; nothing committed; see "
        f"{tmp_path / 'quarantine'}/store_customer/ingest_date={day['date']}"
    )
    assert run.error_message == f"CleanJobError: {message} (exit code 1)", log[-3000:]
    assert f"CleanJobError: {message}" in log.splitlines()
    report = json.loads((tmp_path / "reports" / f"store_customer-{day['date']}.json").read_text())
    assert (report["status"], report["error"]) == ("FAILED", message)
    assert (report["rows_read"], report["rows_quarantined"]) == (total, bad)
    quarantine = tmp_path / "quarantine" / "store_customer" / f"ingest_date={day['date']}"
    assert sum(len(f.read_text().splitlines()) for f in quarantine.glob("part-*.json")) == bad
    assert not (tmp_path / "clean" / "store_customer").exists()


@pytest.mark.slow
def test_real_hudi_from_maven_upserts_by_event_time_when_the_customer_date_moves(
    sample: tuple[Path, dict[str, Any]], tmp_path: Path, warm_spark_drivers: Any
) -> None:
    """The default local run: Hudi 0.15.0 from Maven Central (cached in ~/.ivy2), as on Glue 5.0,
    the job's ``main`` called in the local Glue service's warm Spark driver as Glue calls it
    (the session's driver pool: one JVM for every test that runs the clean job this way).

    The sample's second night has late, older customer records whose newer version moved
    to another customer_date; the truth file says the newer one must survive. The table is
    unpartitioned (customer_date is a column, not a directory), so the move is an update of
    one file group, never a second copy of the key in another partition.
    """
    from hudi import HudiTableBuilder

    sample_dir, truth = sample
    with warm_clean_job(tmp_path, warm_spark_drivers) as service:
        for night in truth["days"]:
            _, log = run_clean_job(service, job_arguments(sample_dir, tmp_path, night["date"]), 900)
            report = json.loads(
                (tmp_path / "reports" / f"store_customer-{night['date']}.json").read_text()
            )
            assert (report["table_format"], report["status"]) == ("hudi", "SUCCEEDED")
            assert "[raw2clean] Hudi 0.15.0 (options for 0.15)" in log
            assert "warm Spark driver" in log
    table = tmp_path / "clean" / "store_customer"
    commits = sorted(p.name for p in (table / ".hoodie").glob("*.commit"))
    assert len(commits) == 2, commits
    batches = HudiTableBuilder.from_base_uri(str(table)).build().read()
    rows = [r for b in batches for r in b.to_pylist()]
    assert len(rows) == truth["days"][-1]["tables"]["store_customer"]["clean_rows"]
    assert {r["customer_id"]: r["address_id"] for r in rows} == truth["final_customer_address"]
    assert {
        r["customer_id"]: r["customer_datetime"].strftime("%Y-%m-%d %H:%M:%S") for r in rows
    } == truth["final_customer_datetime"]
    assert all(r["customer_date"] == r["customer_datetime"].date() for r in rows)
    assert len({r["customer_date"] for r in rows}) > 1
    assert not list(table.glob("customer_date=*"))
    properties = (table / ".hoodie" / "hoodie.properties").read_text().splitlines()
    assert "hoodie.table.partition.fields=" in properties


@pytest.mark.slow
def test_a_full_disk_fails_the_runs_naming_it_and_the_next_runs_recover_the_tables(
    sample: tuple[Path, dict[str, Any]], tmp_path: Path, warm_spark_drivers: Any
) -> None:
    """The clean zone on a small tmpfs, filled before the second night's upserts of the three
    tables, which run at once in the warm driver as in a night: each run ends FAILED naming
    the full disk (with timeline-server markers one of them waited out Hudi's 5-minute read
    timeout first; each run's budget here is below it), and once there is room again the
    same night's runs succeed on the tables Hudi rolled back: the truth's rows."""
    from hudi import HudiTableBuilder

    sample_dir, truth = sample
    first, second = (night["date"] for night in truth["days"])
    with small_tmpfs(tmp_path / "clean", 16) as clean:
        with warm_clean_job(tmp_path, warm_spark_drivers) as service:
            run_clean_jobs(service, sample_dir, tmp_path, first, 900)
            filler = clean / "filler"
            with filler.open("wb") as out:  # leave 150 KB: less than the upserts write
                out.write(b"\0" * (shutil.disk_usage(clean).free - 150 * 1024))
            for failed in run_clean_jobs(service, sample_dir, tmp_path, second, 240, "FAILED"):
                # Which Java exception carries the disk's error depends on where the write
                # failed (Hudi's upsert, or Hadoop's FSError when a local stream's write
                # failed: seen once under load); the message leads with the cause either way
                # (Glue cuts a long ErrorMessage at its end).
                message = failed.error_message
                assert message.startswith("CleanJobError: "), message
                cause = message.find("java.io.IOException: No space left on device")
                assert 0 < cause <= len("CleanJobError: org.apache.hadoop.fs.FSError: "), message
            filler.unlink()
            run_clean_jobs(service, sample_dir, tmp_path, second, 900)
        tables = {
            table: [
                row
                for batch in HudiTableBuilder.from_base_uri(str(clean / table)).build().read()
                for row in batch.to_pylist()
            ]
            for table in TABLES
        }
    for table, rows in tables.items():
        assert len(rows) == truth["days"][-1]["tables"][table]["clean_rows"], table
    customers = tables["store_customer"]
    assert {r["customer_id"]: r["address_id"] for r in customers} == truth["final_customer_address"]


def job_arguments(
    sample_dir: Path, work: Path, day: str, table: str = "store_customer"
) -> dict[str, str]:
    """The clean job's arguments for ``table`` on ``day``, as StartJobRun passes them."""
    argv = job_argv(sample_dir, work, table, day)
    return dict(zip(argv[2::2], argv[3::2], strict=True))  # without --JOB_NAME


def run_clean_jobs(
    service: Any, sample_dir: Path, work: Path, day: str, timeout: float, expect: str = "SUCCEEDED"
) -> list[Any]:
    """The three tables' runs of ``day``, started at once as a night starts them; each must end
    ``expect`` within ``timeout``."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(TABLES)) as pool:
        ended = pool.map(
            lambda table: run_clean_job(
                service, job_arguments(sample_dir, work, day, table), timeout, expect=expect
            )[0],
            TABLES,
        )
        return list(ended)


@pytest.mark.slow
def test_offline_resolution_fails_with_the_fix_and_the_fallback(
    sample: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    sample_dir, truth = sample
    day = truth["days"][0]["date"]
    empty_ivy = tmp_path / "ivy"
    env = {
        k: v for k, v in os.environ.items() if k not in (HUDI_JAR_ENV, "MYSTORE_LOCAL_TABLE_FORMAT")
    }
    # An empty cache and a repository nobody listens on: what a laptop offline sees.
    env |= {
        "MYSTORE_IVY_DIR": str(empty_ivy),
        "MYSTORE_MAVEN_REPOSITORY": "http://127.0.0.1:9/maven2/",
    }
    proc = subprocess.run(
        [sys.executable, "glue/raw2clean.py", *job_argv(sample_dir, tmp_path, "store_sale", day)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "CleanJobError: could not resolve the Hudi jars (org.apache.hudi:hudi-spark3.5-bundle_2.12:0.15.0, "
        f"org.apache.hudi:hudi-aws:0.15.0) from http://127.0.0.1:9/maven2/ into {empty_ivy}: "
    ), last
    assert last.endswith("set MYSTORE_LOCAL_TABLE_FORMAT=delta (the local Delta Lake fallback).")
    assert "[raw2clean] downloading org.apache.hudi:hudi-spark3.5-bundle_2.12:0.15.0" in proc.stdout
    report = json.loads((tmp_path / "reports" / f"store_sale-{day}.json").read_text())
    assert (report["status"], report["error"]) == ("FAILED", last.removeprefix("CleanJobError: "))
    assert not (tmp_path / "clean" / "store_sale").exists()
