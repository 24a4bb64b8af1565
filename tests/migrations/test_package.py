"""The ``migrations`` package's public names, loaded on first use, and what its statement
splitter does not drag in: the local endpoint imports ``migrations.sql_text`` at start, and
Prefect (through the runner's ``tasks.redshift_data``) cost each endpoint start ~2 s."""

from __future__ import annotations

import subprocess
import sys

import pytest

import migrations
from migrations import planning, runner
from tests.local.stack_processes import REPO


@pytest.mark.parametrize("name", migrations.__all__)
def test_each_public_name_is_the_one_of_its_module(name: str) -> None:
    home = planning if name == "MigrationError" else runner
    assert getattr(migrations, name) is getattr(home, name)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'migrat'"):
        migrations.migrat  # noqa: B018


def test_the_endpoints_imports_load_neither_the_runner_nor_prefect() -> None:
    """What ``python -m local serve`` imports before it answers: no Prefect, no runner."""
    probe = (
        "import sys, local.__main__, local.stack, local.glue_jobs.models, local.glue_catalog\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'prefect_aws'}),"
        " 'migrations.runner' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["[]", "False"], out.stdout + out.stderr
