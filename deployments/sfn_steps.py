"""One pipeline step as Step Functions states, with the flow's names, keys and verdicts.

A statement step (procedure or check) is: ListStatements by the step's name prefix ->
decide (reattach to a live or FINISHED attempt, else submit attempt N+1, as
``tasks.redshift_data.submit.decide``) -> ExecuteStatement (StatementName and ClientToken
exactly as the flow's ``RunKey``) -> Wait -> DescribeStatement -> Choice with explicit
FINISHED / FAILED / ABORTED branches, a deadline and no loop on anything unknown. Errors
while waiting cancel the statement before the execution fails with the original error.

A Glue step is: GetJobRuns -> skip when a run with the night's run key SUCCEEDED (the
flow's reattach) -> ``glue:startJobRun.sync`` with the run key in Arguments, timed by the
run's own Timeout only (as the flow's wait) and waiting for a free run slot as the flow does.

Three small expressions are JSONata (per state ``QueryLanguage``) because JSONPath has no
operator for them: the day before a scheduled time, the highest attempt number, and "now"
for a deadline. Everything else, including every Fail state's ErrorPath/CausePath, is
JSONPath.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from deployments.asl import (
    AslBuildError,
    Branch,
    Retrier,
    catch_all,
    choice,
    fail,
    format_call,
    jsonata,
    jsonata_pass,
    result_pass,
    task,
    when,
)
from deployments.sfn_config import ExportConfig
from deployments.sfn_errors import (
    GLUE_CAPACITY,
    add_error_exit,
    describe_retry,
    glue_capacity_retry,
    poll_retry,
    submit_retry,
)
from flows.pipeline import CheckStep, GlueStep, ProcedureStep, Step
from tasks.glue.policy import RUN_KEY_ARGUMENT, build_start_request
from tasks.jobs import RunKey
from tasks.redshift_data.identifiers import call_procedure_sql
from tasks.redshift_data.requests import build_submit_request

SDK = "arn:aws:states:::aws-sdk:redshiftdata:"
GLUE_SYNC = "arn:aws:states:::glue:startJobRun.sync"
GLUE_SDK = "arn:aws:states:::aws-sdk:glue:"
# A placeholder date that renders the flow's own names; replaced by "{}" for States.Format.
_DATE = dt.date(1970, 1, 1)  # a placeholder date, replaced by "{}" in the rendered names
_DATE_MARK = _DATE.isoformat()
_ATTEMPT_MARK = 987654321


def _templated(name: str) -> str:
    return name.replace(_DATE_MARK, "{}").replace(str(_ATTEMPT_MARK), "{}")


def statement_name_format(pipeline: str, step: str) -> str:
    """States.Format rendering ``RunKey.statement_name`` for ($.logical_date, $.run.attempt)."""
    key = RunKey(pipeline, _DATE, step, _ATTEMPT_MARK)
    return format_call(_templated(key.statement_name), "$.logical_date", "$.run.attempt")


def client_token_hash(pipeline: str, step: str, config: ExportConfig) -> str:
    """``RunKey.client_token``: sha256 of "<target scope>|<statement name>", in ASL."""
    key = RunKey(pipeline, _DATE, step, _ATTEMPT_MARK)
    text = f"{config.target.scope()}|{key.statement_name}"
    inner = format_call(_templated(text), "$.logical_date", "$.run.attempt")
    return f"States.Hash({inner}, 'SHA-256')"


def name_prefix_format(pipeline: str, step: str) -> str:
    prefix = RunKey(pipeline, _DATE, step).step_prefix
    return format_call(_templated(prefix), "$.logical_date")


def _sql_of(step: ProcedureStep | CheckStep) -> tuple[str, dict[str, str]]:
    if isinstance(step, ProcedureStep):
        return call_procedure_sql(step.schema, step.procedure, step.args)
    return step.sql, {}


def _timeout(step: Step, config: ExportConfig) -> int:
    if isinstance(step, GlueStep):
        return int(min(step.wait.timeout_seconds, config.glue_timeout_minutes * 60))
    return int(min(step.wait.timeout_seconds, config.statement_timeout_seconds))


def step_timeout_seconds(step: Step, config: ExportConfig) -> int:
    """The longest a step may take; a Glue step may first wait for a free run slot."""
    if isinstance(step, GlueStep):
        return _timeout(step, config) + glue_capacity_retry(step).longest_wait_seconds()
    return _timeout(step, config)


def growing_wait(config: ExportConfig, next_state: str) -> dict[str, Any]:
    """Wait a share of the time already waited, between the configured bounds (JSONata:
    JSONPath cannot compute a duration)."""
    waited = "($millis() - $states.input.run.started_ms) / 1000"
    seconds = (
        f"$min([{config.max_poll_seconds}, "
        f"$max([{config.min_poll_seconds}, $round({waited} * {config.poll_growth})])])"
    )
    return {
        "Type": "Wait",
        "QueryLanguage": "JSONata",
        "Seconds": jsonata(seconds),
        "Next": next_state,
    }


def add_statement_step(
    branch: Branch, step: ProcedureStep | CheckStep, pipeline: str, config: ExportConfig, then: str
) -> str:
    """Add the step's states to ``branch``; returns its first state's name."""
    s = step.name
    sql, parameters = _sql_of(step)
    _, request = build_submit_request(
        config.target, sql, parameters=parameters, with_event=True, client_token="x"
    )
    del request["ClientToken"]
    request["StatementName.$"] = statement_name_format(pipeline, s)
    request["ClientToken.$"] = client_token_hash(pipeline, s, config)
    deadline_ms = _timeout(step, config) * 1000
    names = {k: f"{s}: {k}" for k in ("find", "decide", "attached?", "submit", "wait")}
    names |= {k: f"{s}: {k}" for k in ("describe", "status?", "cancel", "error", "timed out")}
    names |= {"unknown": f"{s}: unknown status", "failed": f"{s}: FAILED"}
    names |= {"aborted": f"{s}: ABORTED"}
    error_exit = catch_all(names["error"])
    cancel_exit = catch_all(names["cancel"])
    branch.add(
        names["find"],
        task(
            SDK + "listStatements",
            # on this warehouse only: ListStatements answers with what the role ran anywhere
            parameters={
                **config.target.statement_filter(),
                "StatementName.$": name_prefix_format(pipeline, s),
                "Status": "ALL",
            },
            result_selector={"Statements.$": "$.Statements"},
            result_path="$.prior",
            retry=[poll_retry()],
            catch=[error_exit],
            next_state=names["decide"],
            comment="earlier attempts of this step tonight (the flow's find_prior_statements)",
        ),
    )
    branch.add(
        names["decide"],
        jsonata_pass(
            f"""(
            $prior := $states.input.prior.Statements;
            $numbers := $map($prior, function($p) {{
                $number($substringAfter($p.StatementName, '/attempt-')) }});
            $latest := $count($prior) = 0 ? 0 : $max($numbers);
            $last := $prior[$number($substringAfter(StatementName, '/attempt-')) = $latest];
            $again := $count($prior) = 0 or $last[0].Status in ['FAILED', 'ABORTED'];
            {{'logical_date': $states.input.logical_date,
              'run': {{'attempt': $again ? $latest + 1 : $latest,
                      'reattach': $not($again),
                      'started_ms': $millis(),
                      'deadline_ms': $millis() + {deadline_ms},
                      'statement': $again ? null : {{'Id': $last[0].Id}}}}}}
            )""",
            names["attached?"],
            comment="reattach to a running or FINISHED attempt; after FAILED/ABORTED submit N+1",
        ),
    )
    branch.add(
        names["attached?"],
        choice(
            [{"Variable": "$.run.reattach", "BooleanEquals": True, "Next": names["wait"]}],
            names["submit"],
        ),
    )
    branch.add(
        names["submit"],
        task(
            SDK + "executeStatement",
            parameters=request,
            result_selector={"Id.$": "$.Id"},
            result_path="$.run.statement",
            retry=[submit_retry(step, config.submit_retry_seconds)],
            catch=[error_exit],
            next_state=names["wait"],
        ),
    )
    branch.add(names["wait"], growing_wait(config, names["describe"]))
    branch.add(
        names["describe"],
        task(
            SDK + "describeStatement",
            parameters={"Id.$": "$.run.statement.Id"},
            result_path="$.desc",
            retry=[describe_retry()],
            catch=[cancel_exit],
            next_state=names["status?"],
        ),
    )
    finished = then
    if isinstance(step, CheckStep):
        finished = _add_check_result(branch, step, then)
    status = "$states.input.desc.Status"
    branch.add(
        names["status?"],
        choice(
            [
                when(f"{status} = 'FINISHED'", finished),
                when(f"{status} = 'FAILED'", names["failed"]),
                when(f"{status} = 'ABORTED'", names["aborted"]),
                when("$millis() > $states.input.run.deadline_ms", names["timed out"]),
                when(f"{status} in ['SUBMITTED', 'PICKED', 'STARTED']", names["wait"]),
            ],
            names["unknown"],
            query_language="JSONata",
        ),
    )
    branch.add(
        names["failed"],
        fail(
            error="Redshift.StatementFailed",
            cause_path="States.Format('{} [statement {}]', $.desc.Error, $.desc.Id)",
        ),
    )
    branch.add(
        names["aborted"],
        fail(
            error="Redshift.StatementAborted",
            cause_path="States.Format('statement {} was ABORTED (cancelled outside this "
            "execution); not retried', $.desc.Id)",
        ),
    )
    for key, error, why in (
        ("timed out", "Redshift.StatementTimeout", f"ran longer than {_timeout(step, config)} s"),
        ("unknown", "Redshift.UnknownStatus", "has a status this machine does not know"),
    ):
        branch.add(
            names[key],
            result_pass(
                {
                    "Error": error,
                    "Cause.$": f"States.Format('statement {{}} {why}; cancelled', $.desc.Id)",
                },
                "$.error",
                names["cancel"],
            ),
        )
    branch.add(
        names["cancel"],
        task(
            SDK + "cancelStatement",
            parameters={"Id.$": "$.run.statement.Id"},
            result_path=None,
            retry=[poll_retry()],
            catch=[catch_all(names["error"], "$.cancel_error")],
            next_state=names["error"],
            comment="never leave a statement running behind a failed step",
        ),
    )
    add_error_exit(branch, s)
    return names["find"]


def _add_check_result(branch: Branch, step: CheckStep, then: str) -> str:
    """FINISHED check -> fail when its query returned rows.

    The count is DescribeStatement's ResultRows (for a query, the rows it returned), which
    the poll already holds. The rows are never fetched: Step Functions checks a service
    answer against its 256 KiB limit before the ResultSelector, so a GetStatementResult
    with a few thousand offending rows ended the execution with States.DataLimitExceeded,
    which no Catch takes, instead of the step's own error."""
    s = step.name
    offending, bad = f"{s}: offending?", f"{s}: offending rows"
    rows = "$.desc.ResultRows"
    returned_rows = [
        {"Variable": "$.desc.HasResultSet", "BooleanEquals": True},
        {"Variable": rows, "IsPresent": True},
        {"Variable": rows, "NumericGreaterThan": 0},
    ]
    branch.add(offending, choice([{"And": returned_rows, "Next": bad}], then))
    branch.add(
        bad,
        fail(
            error="Check.OffendingRows",
            cause_path=format_call(
                f"check {s} ({step.description}) found {{}} offending row(s) [statement {{}}]",
                rows,
                "$.desc.Id",
            ),
        ),
    )
    return offending


def _glue_arguments(step: GlueStep, pipeline: str, config: ExportConfig) -> dict[str, str]:
    """The flow's Arguments: zone paths, the step's own (``{logical_date}`` filled in at run
    time), the report path and the run key (``RunKey.glue_argument``)."""
    arguments: dict[str, str] = {}
    rendered = {**config.glue_arguments, **step.arguments}
    if config.glue_report_path:
        rendered["--report_path"] = (
            f"{config.glue_report_path.rstrip('/')}/{{logical_date}}/{step.name}.json"
        )
    rendered[RUN_KEY_ARGUMENT] = RunKey(pipeline, _DATE, step.name).glue_argument.replace(
        _DATE_MARK, "{logical_date}"
    )
    # build_start_request validates names and values the same way the flow does.
    build_start_request(
        step.job_name, {k: v for k, v in rendered.items() if k != RUN_KEY_ARGUMENT}, "key"
    )
    for key, value in rendered.items():
        if "{logical_date}" not in value:
            arguments[key] = value
            continue
        template = value.replace("{logical_date}", "{}")
        try:
            arguments[f"{key}.$"] = format_call(
                template, *["$.logical_date"] * value.count("{logical_date}")
            )
        except AslBuildError as exc:
            raise AslBuildError(
                f"Glue argument {key}={value!r} of step {step.name!r} cannot be rendered at run "
                f"time: {exc}"
            ) from exc
    return arguments


def add_glue_step(
    branch: Branch, step: GlueStep, pipeline: str, config: ExportConfig, then: str
) -> str:
    s = step.name
    find, decide, done, run = (f"{s}: find", f"{s}: decide", f"{s}: done?", f"{s}: run")
    run_key = RunKey(pipeline, _DATE, s).glue_argument
    before, _, after = run_key.partition(_DATE_MARK)
    for text in (before, after):
        if "'" in text or "`" in text:
            raise AslBuildError(f"run key {run_key!r} cannot be matched in JSONata")
    parameters: dict[str, Any] = {
        "JobName": step.job_name,
        "Arguments": _glue_arguments(step, pipeline, config),
        "Timeout": max(1, _timeout(step, config) // 60),
    }
    if config.glue_worker_type is not None:
        parameters["WorkerType"] = config.glue_worker_type
        parameters["NumberOfWorkers"] = config.glue_number_of_workers
    error_exit = catch_all(f"{s}: error")
    branch.add(
        find,
        task(
            GLUE_SDK + "getJobRuns",
            parameters={"JobName": step.job_name},
            result_selector={"JobRuns.$": "$.JobRuns"},
            result_path="$.prior",
            retry=[Retrier(GLUE_CAPACITY, 2, 5, 2.0, 30)],
            catch=[error_exit],
            next_state=decide,
            comment="a run of tonight's run key that SUCCEEDED is reused (the flow's reattach)",
        ),
    )
    key_expr = f"'{before}' & $states.input.logical_date & '{after}'"
    branch.add(
        decide,
        jsonata_pass(
            f"""{{'logical_date': $states.input.logical_date,
              'done': $count($states.input.prior.JobRuns[
                  JobRunState = 'SUCCEEDED' and Arguments.`{RUN_KEY_ARGUMENT}` = {key_expr}]) > 0}}""",
            done,
        ),
    )
    branch.add(done, choice([{"Variable": "$.done", "BooleanEquals": True, "Next": then}], run))
    branch.add(
        run,
        task(
            GLUE_SYNC,
            parameters=parameters,
            result_path=None,
            retry=[glue_capacity_retry(step)],
            catch=[error_exit],
            # No TimeoutSeconds: the Task's clock also counts StartJobRun, Glue's start-up
            # and the .sync polling delay, so a run that ended within its Timeout could
            # fail here with States.Timeout; the flow's wait has no limit beyond Glue's own.
            next_state=then,
        ),
    )
    add_error_exit(branch, s)
    return find


def add_step(branch: Branch, step: Step, pipeline: str, config: ExportConfig, then: str) -> str:
    if isinstance(step, GlueStep):
        return add_glue_step(branch, step, pipeline, config, then)
    if isinstance(step, ProcedureStep | CheckStep):
        return add_statement_step(branch, step, pipeline, config, then)
    raise AslBuildError(  # a new step kind must be taught to the export, never guessed
        f"step {getattr(step, 'name', step)!r} of kind {type(step).__name__} has no Step "
        "Functions translation; supported: GlueStep, ProcedureStep, CheckStep"
    )


__all__ = ["add_step", "jsonata", "step_timeout_seconds"]
