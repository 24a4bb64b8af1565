"""The README's first command, end to end: standalone nights, ``local up``, attached nights.

Each night runs in a fresh process exactly as a user runs it (``python -m flows.nightly``
on the embedded default, no PREFECT_API_URL), so every night uses the data dir's own
Prefect server. The module's fixture runs, on one data dir:

1. night 1 standalone: the first command a new user runs. It starts its own stack and
   leaves nothing behind but its Prefect server;
2. night 2 standalone: the same command again, reusing that Prefect server;
3. ``python -m local up``, which adopts the server, then night 3 attached to it: it starts
   no stack of its own.

The tests then run the nights a user iterating runs (the same night again, then with
``--force-rerun``) attached to the up stack, which is their fast path; then night 4 as a
deployed run on the same stack, the laptop deploy path of docs/deployment.md (the stack's
own Prefect server, a real process worker, suspend and resume); and the last test takes
the stack down. The deployed night shares this data dir rather than starting a stack and a
cold Spark driver of its own (that setup alone took 16.6-20.0 s on 2 cores).

The warehouse is compared with the generator's truth file (numbers not produced by the
code under test) through the up stack's PostgreSQL, and the summary artifacts and flow
runs are read back from the data dir's Prefect server.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from local.lease import live_stack, read_state
from local.prefect_server import running_server
from local.stack import DUMMY_ACCESS_KEY_ID
from local.warehouse.postgres import start_warehouse
from tests.conftest import PrefectApi, child_commands, data_api_client, throwaway_data_dir
from tests.integration.laptop_deployment import laptop_deployment, wait_for_run
from tests.local.stack_processes import REPO, clean_env, kill_leftovers, local_cli, processes_using

SAMPLE = {"MYSTORE_LOCAL_CUSTOMERS": "300", "MYSTORE_LOCAL_SALES_PER_DAY": "600"}
NIGHT_TIMEOUT = 900
UP_TIMEOUT = 420  # local_cli's default
# The first test's setup runs three nights and `local up`: 144-181 s on a 2-core machine at
# load 3-7; the same steps took 566 s at load 14 with a second pytest process running Spark
# beside them. Each night and `up` has its own timeout, so the item may take their sum
# before pytest-timeout calls it hung; the rerun test's two attached nights fit in the same.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    pytest.mark.timeout(3 * NIGHT_TIMEOUT + UP_TIMEOUT),
]
WAREHOUSE_LINE = re.compile(
    r"Warehouse: customers inserted (?P<inserted>[\d,]+), customers updated in place "
    r"(?P<updated>[\d,]+), customers versioned \(SCD2\) (?P<versioned>[\d,]+), "
    r"sales loaded (?P<sales>[\d,]+), sales replaced (?P<replaced>[\d,]+)"
)
FLOW_RUN_URL = re.compile(
    r"Prefect UI: (?P<ui>http://127\.0\.0\.1:\d+)/runs/flow-run/(?P<id>[\w-]+)"
)
ATTACHED = "Local stack: attached to python -m local up"


@dataclass
class Nights:
    data_dir: Path
    # Every night run, in order: [standalone, standalone, attached, ...the tests' nights].
    outputs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)
    prefect_pid: int = 0  # the Prefect server night 1 started and every later night used

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "flows.nightly", "--data-dir", str(self.data_dir), *args],
            cwd=REPO,
            env=clean_env(**SAMPLE),
            capture_output=True,
            text=True,
            timeout=NIGHT_TIMEOUT,
            check=False,
        )
        self.outputs.append(proc)
        return proc

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """``sql`` on the up stack's PostgreSQL: this process attaches to the running server
        as ``python -m local query`` does (a handle of its own, released after), starting
        no endpoint. Refuses when no stack is up, so it never starts a server itself."""
        live = live_stack(self.data_dir)
        assert live is not None and live.kind == "up", f"no `local up` stack: {live}"
        warehouse = start_warehouse(self.data_dir)
        try:
            with psycopg.connect(warehouse.dsn) as conn:
                return conn.execute(sql).fetchall()
        finally:
            warehouse.stop()

    def truth(self) -> dict[str, Any]:
        return dict(json.loads((self.data_dir / "truth.json").read_text()))


def _lines_until(stream: Any, prefix: str, timeout: float = 120) -> Iterator[str]:
    """Lines of ``stream`` up to and including the first that starts with ``prefix``."""
    deadline = time.monotonic() + timeout
    for line in stream:
        yield line
        if line.startswith(prefix) or time.monotonic() > deadline:
            return


def _changes(output: str) -> dict[str, int]:
    match = WAREHOUSE_LINE.search(output)
    assert match, f"no warehouse summary line in:\n{output[-3000:]}"
    return {k: int(v.replace(",", "")) for k, v in match.groupdict().items()}


def postgres_pids(data_dir: Path) -> set[int]:
    """Postmasters of the data dir (PostgreSQL processes whose parent is not one of them),
    from one listing. A backend whose connection just closed may end between the listing
    and the reading of its name: it is skipped, not an error."""
    listed: dict[int, tuple[str, int]] = {}  # pid: (name, parent pid)
    for process in processes_using(data_dir):
        try:
            listed[process.pid] = (process.name(), process.ppid())
        except psutil.Error:
            continue
    return {
        pid for pid, (name, ppid) in listed.items() if "postgres" in name and ppid not in listed
    }


def _succeeded(
    proc: subprocess.CompletedProcess[str], data_dir: Path
) -> subprocess.CompletedProcess[str]:
    """``proc`` if it exited 0; else its output, and the end of the data dir's stack log (an
    attached night's stack is another process, whose log goes with the data dir)."""
    if proc.returncode != 0:
        log = data_dir / "stack.log"
        stack_log = log.read_text(errors="replace")[-6000:] if log.exists() else "(no stack.log)"
        pytest.fail(
            f"exit {proc.returncode}:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}\n"
            f"--- {log}, last lines:\n{stack_log}"
        )
    return proc


@pytest.fixture(scope="module")
def nights() -> Iterator[Nights]:
    with throwaway_data_dir("nights") as data_dir:
        runs = Nights(data_dir)
        try:
            _succeeded(runs.run(), data_dir)
            server = running_server(data_dir)
            assert server is not None, "the first night did not leave its Prefect server"
            left = {p.pid for p in processes_using(data_dir)}
            assert left == {server.pid}, "a standalone night left more than its Prefect server"
            runs.prefect_pid = server.pid
            _succeeded(runs.run(), data_dir)
            assert {p.pid for p in processes_using(data_dir)} == {server.pid}
            up = local_cli("up", "--data-dir", str(data_dir), timeout=UP_TIMEOUT)
            assert up.returncode == 0, up.stdout + up.stderr
            before = postgres_pids(data_dir)
            _succeeded(runs.run(), data_dir)
            assert postgres_pids(data_dir) == before
            yield runs
        finally:
            local_cli("down", "--data-dir", str(data_dir), timeout=180)
            kill_leftovers(data_dir)


def test_three_nights_load_what_the_generator_says(nights: Nights) -> None:
    """Two standalone nights and an attached one: the same warehouse the generator's
    truth describes, whichever way each night ran."""
    _assert_the_warehouse_is_the_truth(nights, ["2026-11-01", "2026-11-02", "2026-11-03"])


def _assert_the_warehouse_is_the_truth(nights: Nights, loaded: list[str]) -> None:
    """``nights.json`` lists ``loaded`` and the warehouse holds what the generator's truth
    says for those days (numbers not produced by the code under test)."""
    truth = nights.truth()
    assert json.loads((nights.data_dir / "nights.json").read_text()) == loaded
    assert [day["date"] for day in truth["days"]] == loaded
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
    # A sale delivered again on a later day (the generator's corrections) is written again
    # in place: the clean table's rows written beyond its growth.
    grown_before = 0
    for day, changes in zip(truth["days"], (first, second, third), strict=True):
        sales = day["tables"]["store_sale"]
        assert changes["replaced"] == sales["rows_written"] - (sales["clean_rows"] - grown_before)
        grown_before = sales["clean_rows"]
    assert second["replaced"] > 0
    for proc in nights.outputs[:3]:
        assert "succeeded" in proc.stdout
        assert "API calls:" in proc.stdout


def test_each_night_keeps_its_results_in_the_data_dir(nights: Nights) -> None:
    """The nights' checkpoints and cached results are in the data dir, not in the
    ``~/.prefect/storage`` every data dir shared: no night met a checkpoint it did not
    write, though the tests and benches run the same nights on many data dirs."""
    storage = nights.data_dir / "prefect" / "storage"
    assert storage.is_dir() and any(storage.iterdir()), "no results in the data dir"
    for proc in nights.outputs[:3]:
        assert "which the Data API does not know" not in proc.stdout + proc.stderr


def test_the_attached_night_starts_no_stack_of_its_own(nights: Nights) -> None:
    standalone, _, attached = nights.outputs[:3]
    info = read_state(nights.data_dir)
    assert info is not None and info.kind == "up"
    assert "Local AWS endpoint:" in standalone.stdout
    assert "Local AWS endpoint:" not in attached.stdout
    assert f"{ATTACHED}, pid {info.pid}" in attached.stdout
    assert len(postgres_pids(nights.data_dir)) == 1
    assert psutil.Process(info.pid).is_running()


def test_one_prefect_server_serves_every_night_and_its_ui_answers(nights: Nights) -> None:
    outputs = nights.outputs[:3]
    info = read_state(nights.data_dir)
    assert info is not None and info.prefect_ui_url is not None
    assert info.prefect_pid == nights.prefect_pid, "`up` started a second server, not reusing"
    links = [FLOW_RUN_URL.search(proc.stdout) for proc in outputs]
    assert all(links), [proc.stdout[-2000:] for proc in outputs]
    # with the data dir, which a shell without the night's --data-dir needs
    assert (
        "The Prefect server keeps running for the next night; "
        f"`python -m local down --data-dir {nights.data_dir}` stops it." in outputs[0].stdout
    )
    assert (
        "Prefect server: reusing the one an earlier night left running on"
        f" {info.prefect_ui_url} (pid {nights.prefect_pid})" in outputs[1].stdout
    )
    assert {link["ui"] for link in links if link} == {info.prefect_ui_url}
    with urllib.request.urlopen(info.prefect_ui_url + "/", timeout=30) as ui:
        assert ui.status == 200
    for link in links:
        assert link is not None
        with urllib.request.urlopen(f"{info.prefect_api_url}/flow_runs/{link['id']}") as api:
            flow_run = json.loads(api.read())
        assert flow_run["state"]["type"] == "COMPLETED"


def test_the_summary_artifact_holds_the_same_numbers(nights: Nights) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.settings import PREFECT_API_URL, temporary_settings

    info = read_state(nights.data_dir)
    assert info is not None and info.prefect_api_url is not None
    key_filter = ArtifactFilter(key=ArtifactFilterKey(any_=["mystore-nightly-summary"]))
    with (
        temporary_settings(updates={PREFECT_API_URL: info.prefect_api_url}),
        get_client(sync_client=True) as client,
    ):
        artifacts = client.read_artifacts(artifact_filter=key_filter)
    texts = [str(a.data) for a in artifacts]
    third = _changes(nights.outputs[2].stdout)
    assert any(
        "2026-11-03 (local): succeeded" in t
        and f"| sales loaded | {third['sales']:,} |" in t
        and f"| sales replaced | {third['replaced']:,} |" in t
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
    """Both nights attach to the up stack: the loop of a user iterating on one night."""
    exact, business = (_snapshot(nights, with_audit_dates=a) for a in (True, False))
    again = nights.run("--date", "2026-11-03")
    _succeeded(again, nights.data_dir)
    assert ATTACHED in again.stdout
    assert "StartJobRun" not in again.stdout  # every clean run was reattached
    assert _changes(again.stdout) == {
        "inserted": 0,
        "updated": 0,
        "versioned": 0,
        "sales": 0,
        "replaced": 0,
    }
    assert _snapshot(nights, with_audit_dates=True) == exact

    forced = nights.run("--date", "2026-11-03", "--force-rerun")
    _succeeded(forced, nights.data_dir)
    assert ATTACHED in forced.stdout
    assert "StartJobRun 3" in forced.stdout  # the clean job really ran again
    assert _changes(forced.stdout)["inserted"] == 0
    assert _changes(forced.stdout)["versioned"] == 0
    # Its load wrote the night's sales again in place, and says so rather than "sales
    # loaded 0" alone: every sale the clean run wrote again, none new.
    written = nights.truth()["days"][2]["tables"]["store_sale"]["rows_written"]
    assert (_changes(forced.stdout)["sales"], _changes(forced.stdout)["replaced"]) == (0, written)
    assert _snapshot(nights, with_audit_dates=False) == business


def test_a_run_from_the_ui_loads_the_next_night_suspends_and_completes(
    nights: Nights, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The laptop deploy path of docs/deployment.md on the up stack and its own Prefect
    server: a run of ``mystore-nightly-local`` started with no parameters, as from the UI,
    on a real process worker. It loads the next night (the CLI's rule), suspends while the
    local Glue runs work with no process holding it, is resumed by the deployed
    ``resume-waiting-local`` poller, and leaves the warehouse the generator's truth says."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    info = read_state(nights.data_dir)
    assert info is not None and info.kind == "up"
    assert info.prefect_api_url is not None and info.endpoint_url is not None
    logs = tmp_path_factory.mktemp("laptop")
    api = PrefectApi(info.prefect_api_url, logs, logs / "storage")
    with laptop_deployment(api, nights.data_dir, logs, **SAMPLE) as laptop:
        with SyncPrefectClient(api=api.api_url) as client:
            run_id = client.create_flow_run_from_deployment(laptop.nightly_id, parameters={}).id
        run = wait_for_run(
            laptop,
            run_id,
            lambda r: r.state.is_final() or (r.state.is_paused() and r.state.name == "Suspended"),
            timeout=NIGHT_TIMEOUT,
        )
        assert run.state.name == "Suspended", run.state
        assert run.state.message.startswith("waiting on 3: "), run.state.message  # clean runs
        assert "mystore-waiting" in run.tags
        deadline = time.monotonic() + 60
        while (held := list(child_commands(laptop.worker.pid).values())) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.5)  # the suspended run's process may still be exiting
        assert held == [], f"a process holds the suspended run: {held}"

        run = wait_for_run(laptop, run_id, lambda r: r.state.is_final(), 1200, resume=True)
        assert run.state.is_completed(), f"{run.state}:\n{laptop.worker_log.read_text()[-6000:]}"
        assert "mystore-waiting" not in run.tags
        with SyncPrefectClient(api=api.api_url) as client:
            pollers = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[laptop.resumer_id]))
            )
        assert any(r.state and r.state.is_completed() for r in pollers), (
            "resume-waiting-local never ran to completion"
        )

    _assert_the_warehouse_is_the_truth(
        nights, ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    )
    # the identity the deployed run signed with (no AWS keys in the worker's environment)
    data_api = data_api_client(info.endpoint_url, DUMMY_ACCESS_KEY_ID)
    names = [
        s["StatementName"]
        for s in data_api.list_statements(
            StatementName="mystore-nightly/2026-11-04/", Status="ALL"
        )["Statements"]
    ]
    assert names and all(n.endswith("/attempt-1") for n in names), names
    assert len(names) == len(set(names)), f"a statement was submitted twice: {sorted(names)}"


def test_bad_date_is_refused_before_anything_runs(nights: Nights) -> None:
    proc = nights.run("--date", "2026-13-01")
    assert proc.returncode == 2
    assert "'2026-13-01' is not a date in the form YYYY-MM-DD" in proc.stderr


def test_down_stops_the_prefect_server_with_the_stack(nights: Nights) -> None:
    """Last in the module: it ends the stack the other tests look at, under a night attached
    to it. That night ends at once, saying why (it used to retry against the closed ports
    for minutes); the stack's Prefect server goes with the stack."""
    attached = subprocess.Popen(
        [sys.executable, "-m", "flows.nightly", "--data-dir", str(nights.data_dir)],
        cwd=REPO,
        env=clean_env(**SAMPLE),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert attached.stdout is not None
        seen = list(_lines_until(attached.stdout, ATTACHED))
        assert seen[-1].startswith(ATTACHED), "".join(seen)
        down = local_cli("down", "--data-dir", str(nights.data_dir), timeout=180)
        # within a minute (it notices within a second): before, its clients retried for minutes
        output = "".join(seen) + attached.communicate(timeout=60)[0]
    finally:
        if attached.poll() is None:
            attached.kill()
    assert down.returncode == 0, down.stdout + down.stderr
    assert attached.returncode == 1, output[-3000:]
    assert "ended while this run was going" in output and "not marked loaded" in output
    assert f"(`python -m local up --data-dir {nights.data_dir}`)" in " ".join(output.split())
    pid = nights.prefect_pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert processes_using(nights.data_dir) == []
