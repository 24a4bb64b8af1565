"""What the embedded default exports for a night before the flow runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flows.settings import Settings
from local.embedded import LOCAL_GLUE_POLL_MAX_SECONDS, point_clients_at


def test_a_local_night_polls_its_glue_runs_often_unless_the_user_chose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        os, "environ", {k: v for k, v in os.environ.items() if "GLUE_POLL" not in k}
    )
    point_clients_at("http://127.0.0.1:9", tmp_path)
    assert os.environ["MYSTORE_GLUE_POLL_MAX_SECONDS"] == LOCAL_GLUE_POLL_MAX_SECONDS == "0.5"
    assert Settings().glue_poll_max_seconds == 0.5
    assert os.environ["AWS_ENDPOINT_URL_GLUE"] == "http://127.0.0.1:9"

    os.environ["MYSTORE_GLUE_POLL_MAX_SECONDS"] = "3"
    point_clients_at("http://127.0.0.1:9", tmp_path)
    assert Settings().glue_poll_max_seconds == 3.0
