"""What the catalog's requests mean beyond their shape: errors, paging and filter expressions.

Split from service.py (the operations on databases, tables and partitions) along the line
moto draws between ``requests`` and ``models``: the botocore model already checks each
request's shape (local/core); what it cannot express -- which fields are required,
``NextToken``/``MaxResults`` paging, ``GetPartitions``' ``Expression`` (``key = 'value'``
terms joined by AND/OR, what Hudi pushes down) and Glue's error codes for them -- is here, so
every operation refuses a bad request the same way.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from local.endpoint import ServiceError

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "invalid_input",
    "not_found",
    "page_of",
    "parse_expression",
    "partition_matches",
    "required_field",
]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_TERM = re.compile(r"^\(*\s*`?([A-Za-z_][A-Za-z0-9_]*)`?\s*=\s*'?([^'()]*?)'?\s*\)*$")


def invalid_input(message: str) -> ServiceError:
    """Glue's error for a request it cannot act on."""
    return ServiceError("InvalidInputException", message)


def not_found(message: str) -> ServiceError:
    """Glue's error for a database, table or partition that does not exist."""
    return ServiceError("EntityNotFoundException", message)


def required_field(body: Mapping[str, Any], key: str) -> Any:
    """``body[key]``, refused as Glue refuses it when missing or empty."""
    value = body.get(key)
    if value in (None, "", [], {}):
        raise invalid_input(f"{key} is required")
    return value


def page_of(items: list[Any], body: Mapping[str, Any]) -> tuple[list[Any], str | None]:
    """The page ``MaxResults``/``NextToken`` ask for, and the token of the next (or None)."""
    size = body.get("MaxResults") or DEFAULT_PAGE_SIZE
    if not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid_input(f"MaxResults must be between 1 and {MAX_PAGE_SIZE}, got {size!r}")
    token = body.get("NextToken")
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(str(token).encode()).decode())
        except ValueError as exc:
            raise invalid_input(f"NextToken {token!r} is not one this endpoint issued") from exc
    chunk = items[start : start + size]
    following = start + size
    return chunk, (
        base64.urlsafe_b64encode(str(following).encode()).decode()
        if following < len(items)
        else None
    )


def parse_expression(expression: str) -> list[list[tuple[str, str]]]:
    """``a = '1' AND b = '2' OR a = '3'`` -> OR of ANDs of (key, value); other forms refused."""
    alternatives = []
    for alternative in re.split(r"\s+OR\s+", expression.strip(), flags=re.IGNORECASE):
        terms = []
        for term in re.split(r"\s+AND\s+", alternative.strip(), flags=re.IGNORECASE):
            match = _TERM.match(term.strip())
            if not match:
                raise invalid_input(
                    f"Expression term {term!r} is not supported locally; "
                    "supported: key = 'value' joined by AND / OR"
                )
            terms.append((match.group(1).lower(), match.group(2)))
        alternatives.append(terms)
    return alternatives


def partition_matches(
    partition: Mapping[str, Any], keys: list[str], expression: str | None
) -> bool:
    """Whether a partition passes ``GetPartitions``' ``Expression`` (none: every one does)."""
    if not expression:
        return True
    values = dict(zip(keys, partition["Values"], strict=False))
    return any(
        all(values.get(key) == value for key, value in terms)
        for terms in parse_expression(expression)
    )
