"""The laptop deployments' entrypoints (local/deployed.py) without a stack: what they
refuse and which night they pick. The run through a real worker is
tests/integration/test_nightly_e2e.py's deployed night."""

from __future__ import annotations

import json
import logging
import os
import shlex
from datetime import date
from pathlib import Path

import pytest

from flows.settings import Settings
from local.deployed import (
    NoLocalStackError,
    attach_to_stack,
    local_night,
    warn_when_the_sample_size_is_kept,
)
from local.sample_data import GenerateConfig


def local_settings(data_dir: Path) -> Settings:
    return Settings(target="local", local_data_dir=data_dir)


def test_a_deployed_run_with_no_stack_says_how_to_start_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "My Projects" / "night's"
    with pytest.raises(
        NoLocalStackError, match=r"no local stack runs on .*python -m local up"
    ) as refused:
        attach_to_stack(local_settings(data_dir))
    # a command to paste into a shell: the path quoted
    assert f"`python -m local up --data-dir {shlex.quote(str(data_dir))}`" in str(refused.value)


def test_the_local_entrypoints_refuse_the_aws_target(tmp_path: Path) -> None:
    settings = Settings(
        target="aws",
        workgroup_name="mystore-wg",
        raw_path="s3://raw-bucket/raw",
        clean_path="s3://clean-bucket/clean",
        local_data_dir=tmp_path,
    )
    with pytest.raises(ValueError, match="MYSTORE_TARGET is 'aws'"):
        attach_to_stack(settings)


def test_night_is_the_requested_one_else_the_next_not_yet_loaded(tmp_path: Path) -> None:
    settings = local_settings(tmp_path)
    assert local_night(settings, None) == date(2026, 11, 1)  # the sample data's first day
    (tmp_path / "nights.json").write_text(json.dumps(["2026-11-01", "2026-11-02"]))
    assert local_night(settings, None) == date(2026, 11, 3)
    assert local_night(settings, date(2026, 11, 2)) == date(2026, 11, 2)


def test_a_workers_sample_size_that_is_not_used_is_a_warning_in_the_runs_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI says it on the terminal; a deployed run said nothing (the worker's
    MYSTORE_LOCAL_CUSTOMERS was silently not used)."""
    for key in [k for k in os.environ if k.startswith("MYSTORE_")]:
        monkeypatch.delenv(key)
    kept = GenerateConfig(customers=50, sales_per_day=40, seed=5, start_date=date(2026, 11, 1))
    logger = logging.getLogger("deployed-run")
    with caplog.at_level(logging.WARNING, logger="deployed-run"):
        warn_when_the_sample_size_is_kept(kept, local_settings(tmp_path), logger)
        assert caplog.records == []  # nothing asked
        asked = Settings(target="local", local_data_dir=tmp_path, local_customers=3000)
        warn_when_the_sample_size_is_kept(kept, asked, logger)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "MYSTORE_LOCAL_CUSTOMERS=3000 is not used: this data dir's sample data has 50 customers,"
        " kept so that the nights already loaded stay true; a new --data-dir starts with the new"
        " size"
    )
