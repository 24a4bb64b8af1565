"""The step table both the terminal and the Prefect artifact show, from one function."""

from __future__ import annotations

from datetime import date

from flows.summary import (
    NO_INPUT_STATUS,
    NightSummary,
    StepOutcome,
    finished_status,
    step_cells,
    to_markdown,
)


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


def test_a_clean_step_without_input_gives_the_night_a_no_input_verdict() -> None:
    summary = NightSummary("mystore-nightly", date(2026, 12, 25), "local")
    summary.steps = [
        StepOutcome("clean_store_sale", "glue", NO_INPUT_STATUS, 2.0, 0, "run a"),
        StepOutcome("clean_store_customer", "glue", "succeeded", 2.0, 10, "run b"),
        StepOutcome("load_warehouse", "procedure", "succeeded", 1.0, 0, "statement s"),
    ]
    assert summary.succeeded and summary.verdict == "succeeded (no input)"
    assert summary.no_input_steps == ["clean_store_sale"]
    as_dict = summary.as_dict()
    assert (as_dict["verdict"], as_dict["no_input"]) == (
        "succeeded (no input)",
        ["clean_store_sale"],
    )
    assert as_dict["no_input_headline"].startswith(
        "NO INPUT: clean_store_sale found no raw partition for 2026-12-25"
    )
    markdown = to_markdown(summary)
    assert markdown.startswith("# mystore-nightly 2026-12-25 (local): succeeded (no input)\n")
    assert f"**{as_dict['no_input_headline']}**" in markdown
    assert "| clean_store_sale | no input | 2.0s | 0 | run a |" in markdown


def test_a_night_with_input_everywhere_has_no_headline_and_a_failure_stays_failed() -> None:
    summary = NightSummary("p", date(2026, 11, 2), "local")
    summary.steps = [StepOutcome("clean", "glue", "succeeded", 1.0, 5, "run a")]
    assert (summary.verdict, summary.no_input_headline()) == ("succeeded", None)
    assert "NO INPUT" not in to_markdown(summary)
    summary.steps.append(StepOutcome("clean_x", "glue", NO_INPUT_STATUS, 1.0, 0, "run b"))
    summary.error = "step load failed: boom"
    assert summary.verdict == "FAILED"
    assert to_markdown(summary).startswith("# p 2026-11-02 (local): FAILED\n")
