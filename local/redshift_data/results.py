"""Result sets written page by page, within the Data API's size limits.

The Data API refuses a result set over its size limit ("Database response exceeded size
limit", 500 MB per statement) and a row over 64 KB ("Packet for query is too large"); see
"Troubleshooting issues for Amazon Redshift Data API" in the Redshift Management Guide.
The local endpoint applies the same limits while it fetches, so a statement returning
millions of rows is never held in memory: each page is encoded and handed to the store as
soon as it is full, and the statement fails with the Data API's error once the limit is
passed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from local.redshift_data.encoding import encode_value

MAX_RESULT_BYTES = 500 * 1024 * 1024
MAX_ROW_BYTES = 64 * 1024
DEFAULT_PAGE_ROWS = 1000

# A statement that can run as a server-side cursor (DECLARE ... CURSOR FOR <query>) starts
# with one of these words, after comments and opening parentheses.
_QUERY_START = re.compile(
    r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/|\()*(select|with|values|table)\b",
    re.IGNORECASE | re.DOTALL,
)


def is_query(sql: str) -> bool:
    """Whether ``sql`` looks like a single query worth streaming through a server cursor.

    A false positive costs nothing but a refused DECLARE (then the statement runs plainly);
    a false negative only means the result is fetched at once.
    """
    return _QUERY_START.match(sql) is not None


class ResultTooLarge(Exception):
    """The result passed one of the Data API's limits; the message is the statement's Error."""


@dataclass(frozen=True)
class ResultLimits:
    max_bytes: int = MAX_RESULT_BYTES
    max_row_bytes: int = MAX_ROW_BYTES
    page_rows: int = DEFAULT_PAGE_ROWS


class PagedResult:
    """Encodes rows into pages of JSON text and passes each full page to ``write_page``.

    Only one page is held at a time. ``size`` counts the JSON bytes of the records, which is
    what ``ResultSize`` reports and what the limit is checked against.
    """

    def __init__(self, limits: ResultLimits, write_page: Callable[[int, str], None]) -> None:
        self.limits = limits
        self.write_page = write_page
        self.rows = 0
        self.size = 0
        self.pages = 0
        self._pending: list[str] = []

    def add(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            text = json.dumps([encode_value(value) for value in row], separators=(",", ":"))
            if len(text) > self.limits.max_row_bytes:
                raise ResultTooLarge(
                    f"ERROR: Packet for query is too large: row {self.rows + 1} of the result is "
                    f"{len(text):,} bytes; the Data API returns rows of at most "
                    f"{self.limits.max_row_bytes:,} bytes."
                )
            self.size += len(text) + 1
            self.rows += 1
            if self.size > self.limits.max_bytes:
                raise ResultTooLarge(
                    "ERROR: Database response exceeded size limit: the result set passed "
                    f"{self.limits.max_bytes:,} bytes at row {self.rows:,}. Return less (LIMIT, "
                    "several statements, or UNLOAD to S3)."
                )
            self._pending.append(text)
            if len(self._pending) >= self.limits.page_rows:
                self._flush()

    def _flush(self) -> None:
        self.write_page(self.pages, "[" + ",".join(self._pending) + "]")
        self.pages += 1
        self._pending = []

    def close(self) -> None:
        """Write the last page (an empty result still has one page, ``[]``)."""
        if self._pending or self.pages == 0:
            self._flush()
