"""The step table both the terminal and the Prefect artifact show, from one function."""

from __future__ import annotations

from datetime import date

from flows.summary import NightSummary, StepOutcome, finished_status, step_cells, to_markdown


def test_a_missing_count_shows_na_with_its_reason() -> None:
    step = StepOutcome(
        "clean_store_sale", "glue", "succeeded", 3.0, None, "run jr_1", rows_missing="no report"
    )
    assert step_cells(vars(step)) == (
        "clean_store_sale",
        "succeeded",
        "3.0s",
        "n/a",
        "run jr_1; rows n/a: no report",
    )


def test_a_known_count_and_a_step_without_one() -> None:
    counted = StepOutcome("clean", "glue", "reattached", 1.0, 5050, "run jr_2")
    check = StepOutcome("check_x", "check", "succeeded", detail="no offending rows")
    assert step_cells(vars(counted))[1:4] == ("reattached", "1.0s", "5,050")
    assert step_cells(vars(check))[3:] == ("", "no offending rows")


def test_the_artifact_renders_the_same_cells_as_the_dict_the_cli_prints() -> None:
    summary = NightSummary("p", date(2026, 11, 2), "local")
    summary.steps = [
        StepOutcome("clean", "glue", finished_status(True), 2.0, None, "run a", "why"),
        StepOutcome("load", "procedure", finished_status(False), 1.0, 7, "statement s"),
    ]
    markdown = to_markdown(summary)
    for step in summary.as_dict()["steps"]:
        assert "| " + " | ".join(step_cells(step)) + " |" in markdown
    assert "| clean | reattached | 2.0s | n/a | run a; rows n/a: why |" in markdown
