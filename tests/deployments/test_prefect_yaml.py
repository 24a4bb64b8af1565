"""prefect.yaml, deployed for real: `prefect deploy --all` against a local Prefect server.

The module starts its own Prefect server (temporary PREFECT_HOME, its own SQLite file, a
free port), creates the work pools, runs the `prefect deploy` CLI from the repository
root exactly as docs/deployment.md says, and reads the stored deployments back through
the Prefect client. The ECS variant documented in prefect.yaml is deployed too, to a real
`ecs` work pool, so the server validates its job variables against prefect-aws's ECS
job template.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.client.orchestration import PrefectClient, SyncPrefectClient
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.responses import DeploymentResponse
from prefect.exceptions import PrefectHTTPStatusError
from prefect.workers.process import ProcessWorker
from prefect_aws.workers.ecs_worker import ECSJobConfiguration, ECSWorker

from flows.runtime import default_logical_date
from flows.settings import Settings
from tests.conftest import PrefectApi

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = REPO_ROOT / "prefect.yaml"

NIGHTLY = "mystore-nightly/mystore-nightly"
HISTORY = "mystore-history/mystore-history"
NIGHTLY_ECS = "mystore-nightly/mystore-nightly-ecs"
HISTORY_ECS = "mystore-history/mystore-history-ecs"
NIGHTLY_LOCAL = "mystore-nightly/mystore-nightly-local"
RESUME_LOCAL = "resume-waiting/resume-waiting-local"
LOCAL_DEPLOYMENTS = ("mystore-nightly-local", "resume-waiting-local")

# Put into the environment of `prefect deploy`: none of it may reach a stored deployment.
CANARIES = {
    "AWS_ACCESS_KEY_ID": "AKIAZZCANARYKEY00001",
    "AWS_SECRET_ACCESS_KEY": "canary-secret-access-key-0f3b9",
    "AWS_SESSION_TOKEN": "canary-session-token-77e1a",
    "PGPASSWORD": "canary-pg-password-5c2d",
}
SECRET_KEY_NAME = re.compile(r"password|secret_access_key|session_token|api_key|token", re.I)
AWS_ACCESS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")

# Fargate's valid task sizes: cpu units -> allowed memory (MiB).
FARGATE_MEMORY = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
}


def load_prefect_yaml() -> dict[str, Any]:
    data = yaml.safe_load(PREFECT_YAML.read_text())
    assert isinstance(data, dict)
    return data


def ecs_variant(data: dict[str, Any]) -> dict[str, Any]:
    """prefect.yaml with its AWS deployments switched to the documented ECS aliases (the
    laptop variants are left out: they run on the embedded default only).

    Names get an ``-ecs`` suffix so the process deployments stay readable next to them.
    """
    variant = json.loads(json.dumps(data))
    variant["deployments"] = [
        d for d in variant["deployments"] if d["name"] not in LOCAL_DEPLOYMENTS
    ]
    for deployment in variant["deployments"]:
        deployment["name"] = f"{deployment['name']}-ecs"
        deployment["work_pool"] = variant["definitions"]["work_pools"]["ecs"]
        deployment["pull"] = variant["definitions"]["pull"]["ecs"]
    return variant


# --------------------------------------------------------------------------------------
# The file itself (fast, no server)
# --------------------------------------------------------------------------------------


def test_prefect_yaml_parses_with_prefects_own_model() -> None:
    data = load_prefect_yaml()
    model = PrefectYamlModel.model_validate(data)
    assert [d.name for d in model.deployments] == [
        "mystore-nightly",
        "mystore-history",
        "resume-waiting",
        *LOCAL_DEPLOYMENTS,
    ]
    ecs = PrefectYamlModel.model_validate(ecs_variant(data))
    assert [d.work_pool.name for d in ecs.deployments if d.work_pool] == ["mystore-ecs"] * 3


def test_deployments_use_the_process_pool_and_the_ecs_variant_is_complete() -> None:
    data = load_prefect_yaml()
    pools = data["definitions"]["work_pools"]
    for deployment in data["deployments"]:
        if deployment["name"] in LOCAL_DEPLOYMENTS:
            assert deployment["work_pool"] == pools["local"]
            continue
        assert deployment["work_pool"] == pools["process"]
        assert deployment["pull"] == data["definitions"]["pull"]["process"]
    assert pools["process"]["name"] == "mystore-process"
    assert pools["process"]["job_variables"]["env"] == {
        "MYSTORE_TARGET": "aws",
        "MYSTORE_WAIT_MODE": "suspend",
    }

    ecs = pools["ecs"]["job_variables"]
    assert ecs["image"].endswith("/mystore-elt:latest")
    assert ecs["launch_type"] == "FARGATE"
    assert ecs["memory"] in FARGATE_MEMORY[ecs["cpu"]], "not a valid Fargate task size"
    assert ecs["env"]["MYSTORE_TARGET"] == "aws"
    assert all(isinstance(v, str) for v in ecs["env"].values()), "ECS env values are strings"
    (pull,) = data["definitions"]["pull"]["ecs"]
    assert pull["prefect.deployments.steps.set_working_directory"]["directory"].startswith("/")


def test_local_variants_run_on_the_embedded_default_and_suspend() -> None:
    """The laptop deployments: their own process pool, target local, suspend mode, the
    local entrypoints (same flow names, so the UI lists them next to the AWS ones)."""
    from local.deployed import nightly_local, resume_waiting_local

    data = load_prefect_yaml()
    pool = data["definitions"]["work_pools"]["local"]
    assert pool["name"] == "mystore-local"
    assert pool["job_variables"]["env"] == {
        "MYSTORE_TARGET": "local",
        "MYSTORE_WAIT_MODE": "suspend",
    }
    by_name = {d["name"]: d for d in data["deployments"]}
    nightly = by_name["mystore-nightly-local"]
    assert nightly["entrypoint"] == "local/deployed.py:nightly_local"
    assert nightly["parameters"] == {}, "a run with no date loads the next night, as the CLI"
    assert by_name["resume-waiting-local"]["entrypoint"] == (
        "local/deployed.py:resume_waiting_local"
    )
    assert by_name["resume-waiting-local"]["schedules"][0]["active"] is True
    assert (nightly_local.name, resume_waiting_local.name) == ("mystore-nightly", "resume-waiting")


def test_every_env_var_is_a_real_setting_and_the_ecs_env_is_a_valid_aws_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A renamed setting must not leave prefect.yaml silently setting a dead variable."""
    pools = load_prefect_yaml()["definitions"]["work_pools"]
    fields = {f"MYSTORE_{name.upper()}" for name in Settings.model_fields}
    fields.add("PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK")  # shared checkpoints (flows.waiting)
    for pool in pools.values():
        unknown = set(pool["job_variables"]["env"]) - fields
        assert not unknown, f"{pool['name']}: not MYSTORE_* settings: {sorted(unknown)}"

    for key in list(os.environ):
        if key.startswith("MYSTORE_"):
            monkeypatch.delenv(key)
    for key, value in pools["ecs"]["job_variables"]["env"].items():
        if key.startswith("MYSTORE_"):
            monkeypatch.setenv(key, value)
    settings = Settings(**{})  # from the environment; validates the target-"aws" rules
    assert settings.target == "aws"


# --------------------------------------------------------------------------------------
# A real Prefect server and the real `prefect deploy`
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    api_url: str
    home: Path
    log: Path

    def env(self, **extra: str) -> dict[str, str]:
        """A clean environment for the Prefect CLI, pointed at this server only."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PREFECT_", "MYSTORE_", "AWS_"))
        }
        env.update(
            PREFECT_HOME=str(self.home),
            PREFECT_API_URL=self.api_url,
            PREFECT_CLI_PROMPT="false",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_UI_ENABLED="false",
        )
        env.update(extra)
        return env

    def cli(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run the ``prefect`` CLI from the repository root; return its combined output."""
        proc = subprocess.run(
            [sys.executable, "-m", "prefect", *args],
            cwd=REPO_ROOT,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"prefect {' '.join(args)} failed:\n{output}"
        return output


@pytest.fixture(scope="module")
def prefect_server(prefect_api: PrefectApi) -> Server:
    """The session's Prefect server (its scheduler loops every second, so the nightly's
    scheduled runs appear within the test)."""
    return Server(api_url=prefect_api.api_url, home=prefect_api.home, log=prefect_api.log)


@dataclass(frozen=True)
class Deployed:
    server: Server
    output: str  # what `prefect deploy` printed, both runs
    deployments: dict[str, DeploymentResponse]


@pytest.fixture(scope="module")
def deployed(
    prefect_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    """The work pools exist; `prefect deploy --all` ran for prefect.yaml and its ECS variant.

    Removed afterwards: their schedules (resume-waiting every 60 s, the scheduler looping
    every second) would keep the session server's one SQLite writer busy for every later
    test that runs flows on it."""
    with SyncPrefectClient(api=prefect_server.api_url) as client:
        client.create_work_pool(
            WorkPoolCreate(
                name="mystore-process",
                type="process",
                base_job_template=ProcessWorker.get_default_base_job_template(),
            )
        )
        client.create_work_pool(
            WorkPoolCreate(
                name="mystore-local",
                type="process",
                base_job_template=ProcessWorker.get_default_base_job_template(),
            )
        )
        client.create_work_pool(
            WorkPoolCreate(
                name="mystore-ecs",
                type="ecs",
                base_job_template=ECSWorker.get_default_base_job_template(),
            )
        )

    env = prefect_server.env(**CANARIES)
    output = prefect_server.cli("--no-prompt", "deploy", "--all", env=env)

    ecs_file = tmp_path_factory.mktemp("ecs") / "prefect-ecs.yaml"
    ecs_file.write_text(yaml.safe_dump(ecs_variant(load_prefect_yaml()), sort_keys=False))
    output += prefect_server.cli(
        "--no-prompt", "deploy", "--all", "--prefect-file", str(ecs_file), env=env
    )

    with SyncPrefectClient(api=prefect_server.api_url) as client:
        deployments = {
            name: client.read_deployment_by_name(name)
            for name in (NIGHTLY, HISTORY, NIGHTLY_ECS, HISTORY_ECS, NIGHTLY_LOCAL, RESUME_LOCAL)
        }
        # read too so that the teardown removes them (resume-waiting* run every minute)
        for name in ("resume-waiting/resume-waiting", "resume-waiting/resume-waiting-ecs"):
            deployments[name] = client.read_deployment_by_name(name)
    yield Deployed(server=prefect_server, output=output, deployments=deployments)
    with SyncPrefectClient(api=prefect_server.api_url) as client:
        for deployment in deployments.values():
            client.delete_deployment(deployment.id)
        for pool in ("mystore-process", "mystore-ecs", "mystore-local"):
            client.delete_work_pool(pool)


def _date_schema(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "string" and prop.get("format") == "date"


@pytest.mark.slow
def test_nightly_deployment(deployed: Deployed) -> None:
    d = deployed.deployments[NIGHTLY]
    assert d.entrypoint == "flows/nightly.py:nightly"
    assert d.work_pool_name == "mystore-process"
    assert d.work_queue_name == "default"
    assert set(d.tags) >= {"mystore", "nightly"}
    assert d.description and "logical_date" in d.description
    assert d.parameters == {}, "a scheduled run must load the night before its start"
    assert d.enforce_parameter_schema is True
    assert d.job_variables == {"env": {"MYSTORE_TARGET": "aws", "MYSTORE_WAIT_MODE": "suspend"}}
    # the pull step points at the checkout `prefect deploy` ran in (captured at deploy time)
    assert d.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}
    ]
    assert d.global_concurrency_limit is not None
    assert d.global_concurrency_limit.limit == 1

    (schedule,) = d.schedules
    assert schedule.active
    assert schedule.parameters == {}
    sched = schedule.schedule.model_dump()
    assert (sched["cron"], sched["timezone"]) == ("0 3 * * *", "UTC")


@pytest.mark.slow
def test_nightly_schedule_produces_runs_at_three_utc(deployed: Deployed) -> None:
    """The server's own scheduler turns the cron into runs at 03:00 UTC, with no parameters."""
    d = deployed.deployments[NIGHTLY]
    with SyncPrefectClient(api=deployed.server.api_url) as client:
        deadline = time.monotonic() + 30
        while True:
            runs = [
                r
                for r in client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[d.id]))
                )
                if r.auto_scheduled
            ]
            if runs or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert runs, "the scheduler created no runs for mystore-nightly within 30 s"
    starts = sorted(r.expected_start_time for r in runs if r.expected_start_time)
    assert starts and all(
        (s.hour, s.minute, s.second, s.utcoffset()) == (3, 0, 0, timedelta(0)) for s in starts
    )
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(starts))
    assert all(r.parameters == {} for r in runs)
    assert all(r.state_name == "Scheduled" for r in runs)
    # with no parameter, the flow loads the night before each scheduled start
    assert default_logical_date(starts[0]) == (starts[0] - timedelta(days=1)).date()


@pytest.mark.slow
def test_nightly_parameter_schema(deployed: Deployed) -> None:
    d = deployed.deployments[NIGHTLY]
    schema = d.parameter_openapi_schema or {}
    props = schema["properties"]
    assert list(props) == ["logical_date", "force_rerun", "wait_mode"]
    assert not schema.get("required"), "no nightly parameter may be required"

    logical = props["logical_date"]
    assert logical["default"] is None
    variants = logical["anyOf"]
    assert any(_date_schema(v) for v in variants) and {"type": "null"} in variants
    assert props["force_rerun"]["type"] == "boolean"
    assert props["wait_mode"]["default"] is None  # None: MYSTORE_WAIT_MODE decides
    assert props["force_rerun"]["default"] is False
    for name, prop in props.items():
        assert prop.get("description"), f"{name} has no description for the UI form"

    with SyncPrefectClient(api=deployed.server.api_url) as client:
        run = client.create_flow_run_from_deployment(d.id, parameters={})
        assert run.parameters == {}
        run = client.create_flow_run_from_deployment(
            d.id, parameters={"logical_date": "2024-03-01", "force_rerun": True}
        )
        assert run.parameters == {"logical_date": "2024-03-01", "force_rerun": True}
        with pytest.raises(PrefectHTTPStatusError, match="force_rerun"):
            client.create_flow_run_from_deployment(d.id, parameters={"force_rerun": "maybe"})


@pytest.mark.slow
def test_local_nightly_deployment_runs_on_the_embedded_default(deployed: Deployed) -> None:
    d = deployed.deployments[NIGHTLY_LOCAL]
    assert d.entrypoint == "local/deployed.py:nightly_local"
    assert d.work_pool_name == "mystore-local"
    assert d.job_variables == {"env": {"MYSTORE_TARGET": "local", "MYSTORE_WAIT_MODE": "suspend"}}
    assert d.parameters == {}
    assert d.enforce_parameter_schema is True
    assert d.pull_steps == deployed.deployments[NIGHTLY].pull_steps
    (schedule,) = d.schedules
    assert not schedule.active, "a laptop loads nights when asked, unless switched on"
    # the same form in the UI as the AWS nightly
    local_props = (d.parameter_openapi_schema or {})["properties"]
    aws_props = (deployed.deployments[NIGHTLY].parameter_openapi_schema or {})["properties"]
    assert list(local_props) == list(aws_props) == ["logical_date", "force_rerun", "wait_mode"]
    assert local_props["logical_date"]["default"] is None

    r = deployed.deployments[RESUME_LOCAL]
    assert r.entrypoint == "local/deployed.py:resume_waiting_local"
    assert r.work_pool_name == "mystore-local"
    assert r.job_variables == d.job_variables
    (poll,) = r.schedules
    assert poll.active and poll.schedule.model_dump()["interval"] == timedelta(seconds=30)


@pytest.mark.slow
def test_a_malformed_date_is_refused_when_the_run_is_created(deployed: Deployed) -> None:
    """Prefect's server checks no ``format: date``; the flows' date pattern it does check."""
    nightly, history = deployed.deployments[NIGHTLY], deployed.deployments[HISTORY]
    with SyncPrefectClient(api=deployed.server.api_url) as client:
        with pytest.raises(PrefectHTTPStatusError, match="409") as refused:
            client.create_flow_run_from_deployment(
                nightly.id, parameters={"logical_date": "not-a-date"}
            )
        body = refused.value.response.json()
        assert "logical_date" in str(body) and "not-a-date" in str(body)
        with pytest.raises(PrefectHTTPStatusError, match="409") as refused:
            client.create_flow_run_from_deployment(
                history.id, parameters={"start_date": "2024-01-01", "end_date": "soon"}
            )
        assert "end_date" in str(refused.value.response.json())


@pytest.mark.slow
def test_an_unknown_parameter_fails_the_run_first_thing_naming_it(
    deployed: Deployed, prefect_settings: PrefectApi, caplog: pytest.LogCaptureFixture
) -> None:
    """Prefect cannot refuse it at creation: ``prefect deploy`` builds the schema from the
    flow's signature without ``additionalProperties: false`` (``ParameterSchema`` has no
    such field), so the server accepts ``bogus``. The run then fails in its first step, the
    parameter validation, before any work, with a first log line naming the parameter."""
    from prefect.flow_engine import run_flow

    from flows.nightly import nightly

    d = deployed.deployments[NIGHTLY]
    with SyncPrefectClient(api=deployed.server.api_url) as client:
        run = client.create_flow_run_from_deployment(d.id, parameters={"bogus": 1})
        state = run_flow(nightly, flow_run=run, parameters=run.parameters, return_type="state")
        assert state.is_failed()
        assert "provided with parameters ['bogus']" in str(state.message)
        stored = client.read_flow_run(run.id).state
        assert stored is not None and stored.is_failed() and "['bogus']" in str(stored.message)
    engine_lines = [r.getMessage() for r in caplog.records if r.name == "prefect.engine"]
    assert engine_lines[0].startswith("Validation of flow parameters failed with error:")
    assert "['bogus']" in engine_lines[0]


@pytest.mark.slow
def test_history_deployment_requires_its_date_range(deployed: Deployed) -> None:
    d = deployed.deployments[HISTORY]
    assert d.entrypoint == "flows/history.py:history"
    assert d.work_pool_name == "mystore-process"
    assert set(d.tags) >= {"mystore", "history"}
    assert d.description
    assert d.schedules == [], "the history load only runs on demand"
    assert d.parameters == {}
    assert d.enforce_parameter_schema is True

    schema = d.parameter_openapi_schema or {}
    assert schema["required"] == ["start_date", "end_date"]
    for name in ("start_date", "end_date"):
        prop = schema["properties"][name]
        assert _date_schema(prop), prop
        assert "default" not in prop
        assert prop.get("description"), f"{name} has no description for the UI form"

    with SyncPrefectClient(api=deployed.server.api_url) as client:
        with pytest.raises(PrefectHTTPStatusError, match="start_date"):
            client.create_flow_run_from_deployment(d.id, parameters={})
        window = {"start_date": "2024-01-01", "end_date": "2024-01-31"}
        run = client.create_flow_run_from_deployment(d.id, parameters=window)
        assert run.parameters == window


@pytest.mark.slow
def test_ecs_variant_is_accepted_by_a_real_ecs_pool(deployed: Deployed) -> None:
    data = load_prefect_yaml()
    expected = data["definitions"]["work_pools"]["ecs"]["job_variables"]
    for name, entrypoint in ((NIGHTLY_ECS, "nightly"), (HISTORY_ECS, "history")):
        d = deployed.deployments[name]
        assert d.work_pool_name == "mystore-ecs"
        assert d.entrypoint == f"flows/{entrypoint}.py:{entrypoint}"
        assert d.job_variables == expected
        assert d.pull_steps == data["definitions"]["pull"]["ecs"]
    assert deployed.deployments[NIGHTLY_ECS].schedules[0].schedule.model_dump()["cron"] == (
        "0 3 * * *"
    )

    # what the ECS worker would send: the pool's template rendered with these variables
    async def render() -> ECSJobConfiguration:
        async with PrefectClient(api=deployed.server.api_url) as client:
            pool = await client.read_work_pool("mystore-ecs")
            return await ECSJobConfiguration.from_template_and_values(
                pool.base_job_template,
                deployed.deployments[NIGHTLY_ECS].job_variables,
                client=client,
            )

    config = asyncio.run(render())
    (container,) = config.task_definition["containerDefinitions"]
    assert container["image"] == expected["image"]
    assert (config.task_definition["cpu"], config.task_definition["memory"]) == (
        expected["cpu"],
        expected["memory"],
    )
    assert config.task_run_request["launchType"] == "FARGATE"
    assert config.env == expected["env"]


@pytest.mark.slow
def test_no_secret_reaches_a_stored_deployment(deployed: Deployed) -> None:
    for canary in CANARIES.values():
        assert canary not in deployed.output
    for name, d in deployed.deployments.items():
        stored = d.model_dump_json()
        for canary in CANARIES.values():
            assert canary not in stored, f"{name} stores a value from the deploy environment"
        assert not AWS_ACCESS_KEY_ID.search(stored), name

        def walk(node: Any, path: str, name: str = name) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    assert not SECRET_KEY_NAME.search(str(key)), f"{name}: {path}.{key}"
                    walk(value, f"{path}.{key}")
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    walk(value, f"{path}[{i}]")

        walk(d.job_variables, "job_variables")
        walk(d.parameters, "parameters")
        walk(d.pull_steps, "pull_steps")
