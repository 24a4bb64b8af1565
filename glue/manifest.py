"""The completeness contract of a raw partition: a manifest written last, checked first.

A raw partition (``<raw_path>/<table>/ingest_date=<date>/``) is complete only when its
writer, after writing every data file, wrote ``_MANIFEST.json`` (by rename, so it is never
half-written) naming each file with its size in bytes and its row count. The clean job
refuses a partition without a manifest, or whose files or row counts differ from it, with an
error naming the partition and the difference: a partition half-written when the disk filled
must fail the night, not load as if complete. Spark ignores files starting with ``_`` when
it reads the folder, so the manifest is never read as data.

Pure functions over plain values; the clean job and the sample generator do the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

MANIFEST_FILE = "_MANIFEST.json"
MANIFEST_FORMAT = "mystore-raw-partition/1"


class IncompletePartition(ValueError):
    """The partition cannot be trusted to be complete; the message says where and why."""


@dataclass(frozen=True)
class ManifestFile:
    name: str
    bytes: int
    rows: int


@dataclass(frozen=True)
class Manifest:
    table: str
    ingest_date: str
    files: tuple[ManifestFile, ...]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def is_data_file(name: str) -> bool:
    """Files a reader of the folder takes as data (Spark and Hadoop skip ``_`` and ``.``)."""
    return not name.startswith(("_", "."))


def manifest_text(manifest: Manifest) -> str:
    """The manifest as written: stable JSON (same data, same bytes)."""
    body = {
        "format": MANIFEST_FORMAT,
        "table": manifest.table,
        "ingest_date": manifest.ingest_date,
        "total_rows": manifest.rows,
        "files": [{"name": f.name, "bytes": f.bytes, "rows": f.rows} for f in manifest.files],
    }
    return json.dumps(body, indent=1, sort_keys=True) + "\n"


def parse_manifest(text: str, partition: str) -> Manifest:
    """Read a manifest, naming the partition when it is not one this job understands."""
    where = f"raw partition {partition}: {MANIFEST_FILE}"
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise IncompletePartition(f"{where} is not valid JSON ({exc})") from exc
    if not isinstance(body, dict) or body.get("format") != MANIFEST_FORMAT:
        found = body.get("format") if isinstance(body, dict) else type(body).__name__
        raise IncompletePartition(f"{where} has format {found!r}; expected {MANIFEST_FORMAT!r}")
    try:
        files = tuple(
            ManifestFile(name=str(f["name"]), bytes=int(f["bytes"]), rows=int(f["rows"]))
            for f in body["files"]
        )
        manifest = Manifest(
            table=str(body["table"]), ingest_date=str(body["ingest_date"]), files=files
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IncompletePartition(f"{where} lacks or mangles a member: {exc!r}") from exc
    if body.get("total_rows") != manifest.rows:
        raise IncompletePartition(
            f"{where} says total_rows {body.get('total_rows')!r} but its files add up to "
            f"{manifest.rows}"
        )
    return manifest


def check_partition(
    manifest: Manifest, table: str, ingest_date: str, listing: Mapping[str, int], partition: str
) -> None:
    """Compare the manifest with the folder's data files (name -> size in bytes).

    Raises IncompletePartition naming every difference: another table or date, a listed
    file missing or of another size (truncated), a data file the manifest does not list.
    """
    problems: list[str] = []
    if (manifest.table, manifest.ingest_date) != (table, ingest_date):
        problems.append(
            f"the manifest is for {manifest.table} {manifest.ingest_date}, "
            f"not {table} {ingest_date}"
        )
    listed = {f.name: f for f in manifest.files}
    for name, expected in sorted(listed.items()):
        if name not in listing:
            problems.append(f"{name} is listed ({expected.rows} rows) but missing")
        elif listing[name] != expected.bytes:
            problems.append(
                f"{name} has {listing[name]:,} bytes; the manifest says {expected.bytes:,}"
            )
    extra = sorted(name for name in listing if is_data_file(name) and name not in listed)
    if extra:
        problems.append(f"data file(s) not in the manifest: {', '.join(extra)}")
    if problems:
        raise IncompletePartition(
            f"raw partition {partition} is incomplete: " + "; ".join(problems)
        )


def check_row_count(manifest: Manifest, rows_read: int, partition: str) -> None:
    """The rows the job read must be the rows the writer wrote."""
    if rows_read != manifest.rows:
        raise IncompletePartition(
            f"raw partition {partition} is incomplete: read {rows_read:,} rows, the manifest "
            f"lists {manifest.rows:,} in {len(manifest.files)} file(s)"
        )


def missing_manifest(partition: str) -> IncompletePartition:
    return IncompletePartition(
        f"raw partition {partition} has no {MANIFEST_FILE}: it is incomplete (still being "
        "written, or its writer failed) or was written by a tool that does not mark "
        "completion. Write the manifest last (see docs/clean-job.md) and rerun."
    )


def read_partition(path: str) -> tuple[dict[str, int], str | None] | None:
    """The one function here that touches storage: the partition's files (name -> bytes)
    and its manifest's text (None if it has none); None when the folder does not exist.

    Local folders and ``s3://`` both go through pyarrow's filesystems (on Glue, S3 with the
    job's role), as the job's report writer does.
    """
    import os

    import pyarrow.fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(path if "://" in path else os.path.abspath(path))
    if filesystem.get_file_info(root).type == pafs.FileType.NotFound:
        return None
    infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=False))
    listing = {
        info.base_name: int(info.size or 0) for info in infos if info.type == pafs.FileType.File
    }
    if MANIFEST_FILE not in listing:
        return listing, None
    with filesystem.open_input_stream(f"{root.rstrip('/')}/{MANIFEST_FILE}") as stream:
        return listing, stream.read().decode("utf-8")
