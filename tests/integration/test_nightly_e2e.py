"""The README's first command, end to end, over three generated nights.

Each night runs in a fresh process exactly as a user runs it (``python -m flows.nightly``
on the embedded default), against one Prefect server so the artifacts can be read back.
The warehouse is then compared with the generator's truth file: numbers that were not
produced by the code under test.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from local.stack import LocalStack
from tests.conftest import PrefectApi, throwaway_data_dir

REPO = Path(__file__).resolve().parents[2]
SAMPLE = {"MYSTORE_LOCAL_CUSTOMERS": "300", "MYSTORE_LOCAL_SALES_PER_DAY": "600"}
NIGHT_TIMEOUT = 900
# The first test's setup runs three nights: 320 s on a 2-core machine at load 8-10, and past
# pytest's 600 s at load 14 with a second pytest process running Spark beside it. Each night
# has its own NIGHT_TIMEOUT, so the item may take three before pytest-timeout calls it hung.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3 * NIGHT_TIMEOUT)]
WAREHOUSE_LINE = re.compile(
    r"Warehouse: customers inserted (?P<inserted>[\d,]+), customers updated in place "
    r"(?P<updated>[\d,]+), customers versioned \(SCD2\) (?P<versioned>[\d,]+), "
    r"sales loaded (?P<sales>[\d,]+)"
)


@dataclass
class Nights:
    data_dir: Path
    api: PrefectApi
    outputs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = self.api.env(**SAMPLE)
        proc = subprocess.run(
            [sys.executable, "-m", "flows.nightly", "--data-dir", str(self.data_dir), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=NIGHT_TIMEOUT,
            check=False,
        )
        self.outputs.append(proc)
        return proc

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with (
            LocalStack.start(self.data_dir, with_glue=False) as stack,
            psycopg.connect(stack.pg_dsn) as conn,
        ):
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]

    def truth(self) -> dict[str, Any]:
        return dict(json.loads((self.data_dir / "truth.json").read_text()))


def _changes(output: str) -> dict[str, int]:
    match = WAREHOUSE_LINE.search(output)
    assert match, f"no warehouse summary line in:\n{output[-3000:]}"
    return {k: int(v.replace(",", "")) for k, v in match.groupdict().items()}


@pytest.fixture(scope="module")
def nights(prefect_api: PrefectApi) -> Iterator[Nights]:
    with throwaway_data_dir("nights") as data_dir:
        runs = Nights(data_dir, prefect_api)
        for _ in range(3):
            proc = runs.run()
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        yield runs


def test_three_nights_load_what_the_generator_says(nights: Nights) -> None:
    truth = nights.truth()
    assert json.loads((nights.data_dir / "nights.json").read_text()) == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
    ]
    [(current, versions, customers)] = nights.query(
        "select sum(case when scd_current_flag = 'Y' then 1 else 0 end), count(*),"
        " count(distinct customer_id) from dw_mystore.customer_dim where customer_key <> -1"
    )
    assert customers == current == truth["distinct_customers"]
    assert versions == truth["address_versions_total"]
    current_address = dict(
        nights.query(
            "select customer_id, address_id from dw_mystore.customer_dim"
            " where scd_current_flag = 'Y' and customer_key <> -1"
        )
    )
    assert current_address == truth["final_customer_address"]
    [(sales,)] = nights.query("select count(*) from dw_mystore.sale_fact")
    assert sales == truth["days"][-1]["tables"]["store_sale"]["clean_rows"]


def test_each_night_reports_the_real_changes(nights: Nights) -> None:
    truth = nights.truth()
    first, second, third = (_changes(p.stdout) for p in nights.outputs[:3])
    assert first["inserted"] == truth["days"][0]["tables"]["store_customer"]["clean_rows"]
    assert first["versioned"] == 0
    assert first["sales"] == truth["days"][0]["tables"]["store_sale"]["clean_rows"]
    extra_versions = truth["address_versions_total"] - truth["distinct_customers"]
    assert second["versioned"] + third["versioned"] == extra_versions > 0
    assert second["updated"] > 0
    assert (
        sum(c["sales"] for c in (first, second, third))
        == truth["days"][-1]["tables"]["store_sale"]["clean_rows"]
    )
    for proc in nights.outputs[:3]:
        assert "succeeded" in proc.stdout
        assert "API calls:" in proc.stdout


def test_the_summary_artifact_holds_the_same_numbers(nights: Nights) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.settings import PREFECT_API_URL, temporary_settings

    key_filter = ArtifactFilter(key=ArtifactFilterKey(any_=["mystore-nightly-summary"]))
    with (
        temporary_settings(updates={PREFECT_API_URL: nights.api.api_url}),
        get_client(sync_client=True) as client,
    ):
        artifacts = client.read_artifacts(artifact_filter=key_filter)
    texts = [str(a.data) for a in artifacts]
    third = _changes(nights.outputs[2].stdout)
    assert any(
        "2026-11-03 (local): succeeded" in t and f"| sales loaded | {third['sales']:,} |" in t
        for t in texts
    ), texts


def _snapshot(nights: Nights, *, with_audit_dates: bool) -> list[tuple[Any, ...]]:
    audit = ", dw_insert_date, dw_update_date" if with_audit_dates else ""
    return nights.query(
        "select md5(string_agg(t::text, '|' order by t::text)) from ("
        " select customer_key, customer_id, address_id, city, marital_status, scd_start_date,"
        f" scd_end_date, scd_current_flag{audit} from dw_mystore.customer_dim) t"
        " union all select md5(string_agg(f::text, '|' order by f::text)) from ("
        f" select ticket_id, item_id, sold_date, customer_key, net_paid{audit}"
        " from dw_mystore.sale_fact) f"
    )


def test_running_a_night_again_changes_nothing(nights: Nights) -> None:
    exact, business = (_snapshot(nights, with_audit_dates=a) for a in (True, False))
    again = nights.run("--date", "2026-11-03")
    assert again.returncode == 0, again.stdout[-4000:]
    assert "StartJobRun" not in again.stdout  # every clean run was reattached
    assert _changes(again.stdout) == {"inserted": 0, "updated": 0, "versioned": 0, "sales": 0}
    assert _snapshot(nights, with_audit_dates=True) == exact

    forced = nights.run("--date", "2026-11-03", "--force-rerun")
    assert forced.returncode == 0, forced.stdout[-4000:]
    assert "StartJobRun 3" in forced.stdout  # the clean job really ran again
    assert _changes(forced.stdout)["inserted"] == 0
    assert _changes(forced.stdout)["versioned"] == 0
    assert _snapshot(nights, with_audit_dates=False) == business


def test_bad_date_is_refused_before_anything_runs(nights: Nights) -> None:
    proc = nights.run("--date", "2026-13-01")
    assert proc.returncode == 2
    assert "'2026-13-01' is not a date in the form YYYY-MM-DD" in proc.stderr
