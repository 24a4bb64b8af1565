"""The command line refuses bad settings and arguments before anything starts."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from flows import history, nightly


@pytest.fixture(autouse=True)
def _no_mystore_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MYSTORE_* settings going in, and none left behind: the CLI exports its options
    (``--target``) to the environment for the flow it starts."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("MYSTORE_"):
            monkeypatch.delenv(key)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_aws_target_without_a_warehouse_names_the_missing_variables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert nightly.main(["--target", "aws"]) == 2
    out = capsys.readouterr().out
    assert "needs exactly one of MYSTORE_CLUSTER_IDENTIFIER or MYSTORE_WORKGROUP_NAME" in out


def test_a_bad_value_is_named_by_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MYSTORE_GLUE_TIMEOUT_MINUTES", "0")
    assert nightly.main([]) == 2
    assert "MYSTORE_GLUE_TIMEOUT_MINUTES: Input should be greater than or equal to 1" in (
        capsys.readouterr().out
    )


def test_an_arn_is_printed_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x';drop table y"
    monkeypatch.setenv("MYSTORE_SECRET_ARN", bad)
    assert nightly.main([]) == 2
    assert f"{bad!r} is not a Secrets Manager ARN" in capsys.readouterr().out.replace("\n", "")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--date", "2026-02-30"], "'2026-02-30' is not a date in the form YYYY-MM-DD"),
        (["--target", "gcp"], "invalid choice: 'gcp'"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        nightly.main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_history_refuses_a_reversed_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        history.main(["--start-date", "2026-11-03", "--end-date", "2026-11-01"])
    assert exited.value.code == 2
    assert "--start-date 2026-11-03 is after --end-date 2026-11-01" in capsys.readouterr().err
