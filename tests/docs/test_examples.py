"""The code examples in README.md and docs/ run, so they stay true.

Every fenced ``python`` block of the user-facing docs is executed in a fresh interpreter,
against the session's local endpoint (as ``AWS_ENDPOINT_URL_*``, the way a user points
boto3 at it) and the session's Prefect server, where a ``RedshiftTarget`` block named
``warehouse`` is saved first, as the docs tell a user to do once. The examples sign as
their own access key, so the local Data API scopes their statements apart from the other
tests' (as it scopes statements per identity on AWS). A block that cannot run here says so on the
line before its fence, ``<!-- example: not run: <what it needs> -->``, and is reported as
skipped with that reason; any other block that fails fails the suite.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from local.stack import LocalStack
from tasks.redshift_data import RedshiftTarget
from tests.conftest import TEST_SECRET_KEY, PrefectApi

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"<!--\s*example:\s*not run:\s*(?P<reason>.+?)\s*-->")
EXAMPLES_ACCESS_KEY = "AKIDDOCSEXAMPLES"
FENCE = re.compile(r"^(?P<indent>\s*)```python\s*$")


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    code: str
    not_run: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def examples_in(path: Path) -> list[Example]:
    """The python blocks of one Markdown file, with their first line and opt-out reason."""
    lines = path.read_text().splitlines()
    found: list[Example] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent = len(fence["indent"])
        previous = lines[i - 1] if i else ""
        marker = NOT_RUN.search(previous)
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j][indent:])
            j += 1
        if j == len(lines):
            raise AssertionError(f"{path}:{i + 1}: python block is never closed")
        found.append(Example(path, i + 1, "\n".join(body) + "\n", marker and marker["reason"]))
        i = j + 1
    return found


EXAMPLES = [example for path in DOCUMENTS for example in examples_in(path)]


def test_the_docs_have_runnable_examples() -> None:
    runnable = [e.id for e in EXAMPLES if e.not_run is None]
    assert any(e.startswith("README.md") for e in runnable), runnable
    assert any(e.startswith("docs/data-api-tasks.md") for e in runnable), runnable


def test_an_unclosed_block_or_an_opt_out_is_recognised(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "text\n<!-- example: not run: needs AWS -->\n```python\nprint(1)\n```\n"
        "  ```python\n  print(2)\n  ```\n"
    )
    first, second = examples_in(doc)
    assert (first.not_run, first.code, first.line) == ("needs AWS", "print(1)\n", 3)
    assert (second.not_run, second.code) == (None, "print(2)\n")
    doc.write_text("```python\nprint(1)\n")
    with pytest.raises(AssertionError, match="never closed"):
        examples_in(doc)


@pytest.fixture(scope="module")
def saved_warehouse_block(prefect_api: PrefectApi) -> str:
    """The ``warehouse`` block the docs assume a user saved once (the local cluster)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_api.api_url}):
        target = RedshiftTarget(database="dev", cluster_identifier="local", db_user="awsuser")
        target.save("warehouse", overwrite=True)
    return "warehouse"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example_runs(
    example: Example,
    migrated: LocalStack,
    prefect_api: PrefectApi,
    saved_warehouse_block: str,
    tmp_path: Path,
) -> None:
    if example.not_run is not None:
        pytest.skip(f"marked not run in the doc: {example.not_run}")
    env = prefect_api.env(
        **{
            **migrated.client_env(),
            "AWS_ACCESS_KEY_ID": EXAMPLES_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
            "PYTHONPATH": str(ROOT),
        }
    )
    script = tmp_path / "example.py"
    script.write_text(example.code)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (
        f"{example.id} failed (exit {done.returncode}):\n{example.code}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
