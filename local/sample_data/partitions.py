"""Raw partitions written the way the clean job expects a complete one, and the range of
days one generator call may write.

A partition is complete exactly when its manifest (glue/manifest.py) exists: the previous
manifest is removed first, every file is renamed into place from a temporary name, and the
manifest is renamed in last. The day cap keeps a mistyped date from filling the disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import BinaryIO

from glue.manifest import MANIFEST_FILE, Manifest, ManifestFile, manifest_text

Row = dict[str, str | None]
PART_FILE = "part-00000.json"
MAX_DAYS = 366
MAX_DAYS_ENV = "MYSTORE_LOCAL_MAX_SAMPLE_DAYS"
FIRST_DATE = date(1900, 1, 1)
LAST_DATE = date(2999, 12, 30)


class SampleRangeError(ValueError):
    """The requested days are absurd (too many at once, or outside the supported dates)."""


def max_days(environ: dict[str, str] | None = None) -> int:
    """The cap on days generated in one call: ``MYSTORE_LOCAL_MAX_SAMPLE_DAYS`` or 366."""
    text = (os.environ if environ is None else environ).get(MAX_DAYS_ENV, "").strip()
    if not text:
        return MAX_DAYS
    if not text.isdigit() or int(text) < 1:
        raise SampleRangeError(f"{MAX_DAYS_ENV} {text!r} must be a whole number of days >= 1")
    return int(text)


def check_range(start_date: date, days: int, limit: int) -> None:
    """Refuse a range that would write years of data or leave the supported dates."""
    if start_date < FIRST_DATE or start_date > LAST_DATE:
        raise SampleRangeError(
            f"sample data cannot start on {start_date.isoformat()}: dates must be from "
            f"{FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()}"
        )
    if days > limit:
        raise SampleRangeError(
            f"refusing to generate {days:,} days of sample data from {start_date.isoformat()} "
            f"in one go: the limit is {limit:,} days. Ask for fewer days (or a date nearer the "
            f"first day), or raise the limit with {MAX_DAYS_ENV}=N "
            "(python -m local.sample_data: --max-days N)."
        )
    if (LAST_DATE - start_date).days + 1 < days:
        raise SampleRangeError(
            f"{days:,} days from {start_date.isoformat()} run past {LAST_DATE.isoformat()}, "
            "the last supported date"
        )


def write_partition(folder: Path, table: str, day: date, lines: Iterable[Row]) -> Manifest:
    """Write one raw partition so that it is complete exactly when its manifest exists.

    The previous manifest is removed before anything else changes, every file is renamed
    into place from a temporary name, and the new manifest is renamed in last: a writer
    stopped at any point (a full disk, a kill) leaves a partition the clean job refuses.
    The lines are written as they come (a day of a million sales is 500 MB of JSON, never
    held whole).
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_FILE).unlink(missing_ok=True)
    for stale in folder.iterdir():
        stale.unlink()
    rows = 0

    def encoded() -> Iterator[bytes]:
        nonlocal rows
        for line in lines:
            rows += 1
            yield (json.dumps(line) + "\n").encode("utf-8")

    size = _write_then_rename(folder / PART_FILE, encoded())
    manifest = Manifest(
        table=table,
        ingest_date=day.isoformat(),
        files=(ManifestFile(name=PART_FILE, bytes=size, rows=rows),),
    )
    _write_then_rename(folder / MANIFEST_FILE, [manifest_text(manifest).encode("utf-8")])
    return manifest


def partition_is_complete(folder: Path) -> bool:
    """True when the partition's manifest is there: a writer stopped midway leaves none."""
    return (folder / MANIFEST_FILE).is_file()


@contextmanager
def replaced_when_written(target: Path, *, fsync: bool = True) -> Iterator[BinaryIO]:
    """A file to write ``target``'s new content into, under a temporary name renamed onto
    ``target`` when the block ends: a reader sees the old file or the whole new one. If the
    block raises (a full disk, a failing row, Ctrl-C) the temporary file is removed, so no
    half file is left beside the data (the generator's state alone is hundreds of MB at the
    largest sizes). ``fsync`` makes the content durable before the rename."""
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        with temporary.open("wb") as fh:
            yield fh
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, target)


def _write_then_rename(target: Path, chunks: Iterable[bytes]) -> int:
    """Write the chunks to ``target`` through ``replaced_when_written``; the size."""
    size = 0
    with replaced_when_written(target) as fh:
        for chunk in chunks:
            fh.write(chunk)
            size += len(chunk)
    return size
