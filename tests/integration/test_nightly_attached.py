"""Two standalone nights, then ``python -m local up`` and a night that attaches to it.

No PREFECT_API_URL is given, so every night uses the data dir's own Prefect server: the
first starts it and leaves it running (nothing else of its stack), the second reuses it,
``up`` adopts it, the attached night uses it, and all flow runs are in its database
afterwards. The warehouse after the attached night is compared with the generator's truth,
as the standalone nights of test_nightly_e2e are.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from local.lease import read_state
from local.prefect_server import running_server
from local.stack import LocalStack
from tests.conftest import throwaway_data_dir
from tests.local.stack_processes import REPO, clean_env, kill_leftovers, local_cli, processes_using

NIGHT_TIMEOUT = 900
UP_TIMEOUT = 420  # local_cli's default
# The first test's setup runs two nights, `local up` and a third night: 204 s on a 2-core
# machine at load 8-10, 566 s at load 14 with a second pytest process running Spark beside
# it. Each has its own timeout, so the item may take their sum before pytest-timeout calls
# it hung.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3 * NIGHT_TIMEOUT + UP_TIMEOUT)]

SAMPLE = {"MYSTORE_LOCAL_CUSTOMERS": "300", "MYSTORE_LOCAL_SALES_PER_DAY": "600"}
FLOW_RUN_URL = re.compile(
    r"Prefect UI: (?P<ui>http://127\.0\.0\.1:\d+)/runs/flow-run/(?P<id>[\w-]+)"
)


def night(data_dir: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "flows.nightly", "--data-dir", str(data_dir)],
        cwd=REPO,
        env=clean_env(**SAMPLE),
        capture_output=True,
        text=True,
        timeout=NIGHT_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc


def postgres_pids(data_dir: Path) -> set[int]:
    return {
        p.pid
        for p in processes_using(data_dir)
        if "postgres" in p.name() and p.ppid() not in {q.pid for q in processes_using(data_dir)}
    }


def query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    with (
        LocalStack.start(data_dir, with_glue=False) as stack,
        psycopg.connect(stack.pg_dsn) as conn,
    ):
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def nights() -> Iterator[tuple[Path, list[subprocess.CompletedProcess[str]], int]]:
    """(data dir, [standalone, standalone, attached], pid of the Prefect server)."""
    with throwaway_data_dir("attached") as data_dir:
        try:
            first = night(data_dir)
            server = running_server(data_dir)
            assert server is not None, "the first night did not leave its Prefect server"
            left = {p.pid for p in processes_using(data_dir)}
            assert left == {server.pid}, "a standalone night left more than its Prefect server"
            second = night(data_dir)
            assert {p.pid for p in processes_using(data_dir)} == {server.pid}
            up = local_cli("up", "--data-dir", str(data_dir))
            assert up.returncode == 0, up.stdout + up.stderr
            before = postgres_pids(data_dir)
            attached = night(data_dir)
            assert postgres_pids(data_dir) == before
            yield data_dir, [first, second, attached], server.pid
        finally:
            local_cli("down", "--data-dir", str(data_dir), timeout=180)
            kill_leftovers(data_dir)


Nights = tuple[Path, list[subprocess.CompletedProcess[str]], int]


def test_the_attached_night_starts_no_stack_of_its_own(nights: Nights) -> None:
    data_dir, (standalone, _, attached), _ = nights
    info = read_state(data_dir)
    assert info is not None and info.kind == "up"
    assert "Local AWS endpoint:" in standalone.stdout
    assert "Local AWS endpoint:" not in attached.stdout
    assert f"Local stack: attached to python -m local up, pid {info.pid}" in attached.stdout
    assert len(postgres_pids(data_dir)) == 1
    assert psutil.Process(info.pid).is_running()


def test_one_prefect_server_serves_every_night_and_its_ui_answers(nights: Nights) -> None:
    data_dir, outputs, server_pid = nights
    info = read_state(data_dir)
    assert info is not None and info.prefect_ui_url is not None
    assert info.prefect_pid == server_pid, "`up` started a second server instead of reusing"
    links = [FLOW_RUN_URL.search(proc.stdout) for proc in outputs]
    assert all(links), [proc.stdout[-2000:] for proc in outputs]
    assert (
        "The Prefect server keeps running for the next night; `python -m local down` stops it."
        in outputs[0].stdout
    )
    assert (
        f"Prefect server: reusing the one an earlier night left running on {info.prefect_ui_url} (pid {server_pid})"
        in (outputs[1].stdout)
    )
    assert {link["ui"] for link in links if link} == {info.prefect_ui_url}
    with urllib.request.urlopen(info.prefect_ui_url + "/", timeout=30) as ui:
        assert ui.status == 200
    for link in links:
        assert link is not None
        with urllib.request.urlopen(f"{info.prefect_api_url}/flow_runs/{link['id']}") as api:
            flow_run = json.loads(api.read())
        assert flow_run["state"]["type"] == "COMPLETED"


def test_the_warehouse_after_an_attached_night_is_the_generators_truth(nights: Nights) -> None:
    data_dir, _, _ = nights
    truth = json.loads((data_dir / "truth.json").read_text())
    assert json.loads((data_dir / "nights.json").read_text()) == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
    ]
    [(current, customers)] = query(
        data_dir,
        "select sum(case when scd_current_flag = 'Y' then 1 else 0 end),"
        " count(distinct customer_id) from dw_mystore.customer_dim where customer_key <> -1",
    )
    [(sales,)] = query(data_dir, "select count(*) from dw_mystore.sale_fact")
    assert customers == current == truth["distinct_customers"]
    assert sales == truth["days"][-1]["tables"]["store_sale"]["clean_rows"]


def test_down_stops_the_prefect_server_with_the_stack(nights: Nights) -> None:
    """Last in the module: it ends the stack the other tests look at."""
    data_dir, _, server_pid = nights
    down = local_cli("down", "--data-dir", str(data_dir), timeout=180)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == (
        psutil.STATUS_ZOMBIE
    )
    assert processes_using(data_dir) == []
