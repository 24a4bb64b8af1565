"""The clean job's arguments: which are accepted, how they are read, and what each may be.

Split from raw2clean.py (the script Glue runs) so that the argument contract can be read,
tested and reused without the job itself: the local Glue service calls
:func:`resolve_arguments` and :func:`build_arguments` to choose a warm Spark driver's
session before the job runs, and tests check every rule without Spark. The arguments are
documented in raw2clean.py's docstring, which is what a user of the script reads. On Glue
this module comes with the ``glue`` package (``--extra-py-files``), like every sibling.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from glue.contract import TableContract, table_contract
from glue.hudi_options import (
    DEFAULT_CATALOG_DATABASE,
    DEFAULT_RETAIN_COMMITS,
    HudiVersion,
    hudi_version_of,
)
from glue.hudi_runtime import (
    GLUE_HUDI_RELEASES,
    LOCAL_TABLE_FORMAT_ENV,
    HudiRuntimeError,
    expected_hudi_release,
)

# The first line of raw2clean.py's docstring: argparse's description (``--help``).
JOB_SUMMARY = (
    "Glue job: clean one raw MyStore table for one logical date and upsert it into the clean zone."
)
HUDI_JAR_ENV = "MYSTORE_HUDI_BUNDLE_JAR"
ALLOW_EMPTY_ENV = "MYSTORE_ALLOW_EMPTY_INPUT"
HORIZON_ENV = "MYSTORE_EVENT_TIME_HORIZON_HOURS"
REQUIRED = ("table", "raw_path", "clean_path", "quarantine_path", "logical_date")
OPTIONAL = (
    "JOB_NAME",
    "report_path",
    "max_quarantine_share",
    "load_type",
    "table_format",
    "hudi_bundle_jar",
    "hudi_version",
    "retain_commits",
    "catalog_database",
    "catalog_endpoint",
    "catalog_region",
    "glue_version",
    "allow_empty_input",
    "event_time_horizon_hours",
)


@dataclass(frozen=True)
class JobArguments:
    """The validated arguments of one run (see :func:`build_arguments`)."""

    job_name: str
    table: str
    raw_path: str
    clean_path: str
    quarantine_path: str
    logical_date: date
    report_path: str | None = None
    max_quarantine_share: float = 0.05
    load_type: str = "auto"
    table_format: str = "auto"
    hudi_bundle_jar: str | None = None
    hudi_version: HudiVersion = "0.15"
    retain_commits: int = DEFAULT_RETAIN_COMMITS
    catalog_database: str | None = None
    catalog_endpoint: str | None = None
    catalog_region: str | None = None
    glue_version: str | None = None
    allow_empty_input: bool = False
    event_time_horizon_hours: float = 24.0

    @property
    def contract(self) -> TableContract:
        return table_contract(self.table)

    def partition_path(self, root: str) -> str:
        return f"{root.rstrip('/')}/{self.table}/ingest_date={self.logical_date.isoformat()}"

    @property
    def table_path(self) -> str:
        return f"{self.clean_path.rstrip('/')}/{self.table}"


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(
            f"--{name} {value!r} is not allowed; expected one of: {', '.join(allowed)}"
        )
    return value


def build_arguments(
    raw: Mapping[str, str | None], *, on_glue: bool, env: Mapping[str, str] | None = None
) -> JobArguments:
    """Validate resolved arguments (all strings) into JobArguments, naming any bad value."""
    env = os.environ if env is None else env
    missing = [f"--{n}" for n in REQUIRED if not raw.get(n)]
    if missing:
        raise ValueError(f"missing required argument(s): {', '.join(missing)}")
    table = str(raw["table"])
    table_contract(table)  # names the allowed tables when wrong
    try:
        logical_date = date.fromisoformat(str(raw["logical_date"]))
    except ValueError as exc:
        raise ValueError(
            f"--logical_date {raw['logical_date']!r} is not a YYYY-MM-DD date"
        ) from exc
    share_text = raw.get("max_quarantine_share") or "0.05"
    try:
        share = float(share_text)
    except ValueError as exc:
        raise ValueError(f"--max_quarantine_share {share_text!r} is not a number") from exc
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"--max_quarantine_share {share_text!r} must be between 0 and 1")
    retain_text = raw.get("retain_commits") or str(DEFAULT_RETAIN_COMMITS)
    if not retain_text.isdigit() or int(retain_text) < 1:
        raise ValueError(f"--retain_commits {retain_text!r} must be a whole number >= 1")
    jar = raw.get("hudi_bundle_jar") or env.get(HUDI_JAR_ENV) or None
    table_format = _choice(
        "table_format", raw.get("table_format") or "auto", ("auto", "hudi", "delta")
    )
    if table_format == "auto":
        # Hudi everywhere by default; locally Spark fetches the bundle from Maven Central.
        local_choice = (env.get(LOCAL_TABLE_FORMAT_ENV) or "hudi").strip().lower()
        table_format = (
            "hudi" if on_glue else _choice(LOCAL_TABLE_FORMAT_ENV, local_choice, ("hudi", "delta"))
        )
    glue_version = raw.get("glue_version") or None
    if glue_version is not None:
        try:
            expected_hudi_release(glue_version)
        except HudiRuntimeError as exc:  # a bad argument: exit 2 like the others
            raise ValueError(str(exc)) from exc
    version_text = (
        raw.get("hudi_version")
        or (Path(jar).stem.rsplit("-", 1)[-1] if jar else None)
        or (GLUE_HUDI_RELEASES[glue_version] if glue_version else "0.15")
    )
    catalog_endpoint = raw.get("catalog_endpoint") or None
    catalog = raw.get("catalog_database")
    if catalog is None:
        catalog = DEFAULT_CATALOG_DATABASE if on_glue or catalog_endpoint else None
    elif catalog.lower() == "none":
        catalog = None
    allow_text = (raw.get("allow_empty_input") or env.get(ALLOW_EMPTY_ENV) or "false").lower()
    allow_empty = _choice("allow_empty_input", allow_text, ("true", "false")) == "true"
    horizon_text = raw.get("event_time_horizon_hours") or env.get(HORIZON_ENV) or "24"
    try:
        horizon_hours = float(horizon_text)
    except ValueError:
        horizon_hours = -1.0
    if not 0 <= horizon_hours <= 24 * 366:
        raise ValueError(
            f"--event_time_horizon_hours {horizon_text!r} must be a number of hours from 0 to 8784"
        )
    return JobArguments(
        allow_empty_input=allow_empty,
        event_time_horizon_hours=horizon_hours,
        job_name=raw.get("JOB_NAME") or "raw2clean",
        table=table,
        raw_path=str(raw["raw_path"]),
        clean_path=str(raw["clean_path"]),
        quarantine_path=str(raw["quarantine_path"]),
        logical_date=logical_date,
        report_path=raw.get("report_path") or None,
        max_quarantine_share=share,
        load_type=_choice(
            "load_type", raw.get("load_type") or "auto", ("auto", "initial", "incremental")
        ),
        table_format=table_format,
        hudi_bundle_jar=jar,
        hudi_version=hudi_version_of(version_text) if table_format == "hudi" else "0.15",
        retain_commits=int(retain_text),
        catalog_database=catalog if table_format == "hudi" else None,
        catalog_endpoint=catalog_endpoint,
        catalog_region=raw.get("catalog_region") or None,
        glue_version=glue_version,
    )


def resolve_arguments(
    argv: Sequence[str], glue_resolver: Callable[[list[str], list[str]], dict[str, str]] | None
) -> tuple[dict[str, str | None], list[str]]:
    """Raw argument values and the names of arguments ignored, Glue's way or argparse's."""
    if glue_resolver is not None:
        argv_list = ["raw2clean.py", *argv]
        present = [n for n in OPTIONAL if f"--{n}" in argv]
        names = [*REQUIRED, *present]
        if "JOB_NAME" not in names:
            names.append("JOB_NAME")
        return dict(glue_resolver(argv_list, names)), []
    parser = argparse.ArgumentParser(prog="raw2clean", description=JOB_SUMMARY)
    for name in (*REQUIRED, *OPTIONAL):
        parser.add_argument(f"--{name}", dest=name, default=None)
    parser.add_argument("--JOB_RUN_ID", help="set by Glue and the local Glue service; unused")
    known, unknown = parser.parse_known_args(list(argv))
    values = {k: v for k, v in vars(known).items() if k != "JOB_RUN_ID"}
    return values, [u for u in unknown if u.startswith("--")]


def awsglue_resolver() -> Callable[[list[str], list[str]], dict[str, str]] | None:
    """Glue's ``getResolvedOptions`` when running on Glue (awsglue importable), else None."""
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:
        return None
    return getResolvedOptions
