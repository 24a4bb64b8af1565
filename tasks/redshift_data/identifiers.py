"""Schema and procedure names are the only SQL text we build; everything else is a Parameter.

The rules are deliberately stricter than Redshift's: ASCII letters, digits, ``_`` and ``$``,
starting with a letter or ``_``, at most 127 bytes. Redshift also accepts multibyte UTF-8
characters, but a Cyrillic "a" (U+0430) next to a Latin one is how a look-alike procedure gets
called, and none of our names need them. Names are folded to lower case (what Redshift does
to unquoted names) and then double-quoted, so reserved words are safe too.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping, Sequence
from decimal import Decimal

from tasks.jobs import InvalidRequestError

MAX_IDENTIFIER_BYTES = 127
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_ALLOWED = "ASCII letters, digits, '_' and '$', starting with a letter or '_', at most 127 bytes"

# What a procedure argument may be; each becomes one Data API parameter (a string).
ArgValue = str | int | float | Decimal | bool | dt.date | dt.datetime | dt.time | None


def validate_identifier(value: object, kind: str = "identifier") -> str:
    """The identifier folded to lower case, or InvalidRequestError naming what is wrong."""
    if not isinstance(value, str):
        raise InvalidRequestError(f"{kind} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidRequestError(f"{kind} must not be empty; allowed: {_ALLOWED}")
    size = len(value.encode("utf-8"))
    if size > MAX_IDENTIFIER_BYTES:
        raise InvalidRequestError(
            f"{kind} {value[:40]!r}... is {size} bytes long; allowed: {_ALLOWED}"
        )
    for char in value:
        if not char.isascii():
            name = unicodedata.name(char, "unnamed character")
            raise InvalidRequestError(
                f"{kind} {value!r} contains {char!r} (U+{ord(char):04X} {name}), which is not "
                f"ASCII and may imitate another character; allowed: {_ALLOWED}"
            )
    if not _IDENTIFIER_RE.fullmatch(value):
        bad = next((c for c in value if not (c.isalnum() or c in "_$")), value[0])
        raise InvalidRequestError(
            f"{kind} {value!r} contains or starts with {bad!r}; allowed: {_ALLOWED}"
        )
    return value.lower()


def quote_identifier(value: object, kind: str = "identifier") -> str:
    """A validated identifier in double quotes (validation guarantees no quote inside)."""
    return f'"{validate_identifier(value, kind)}"'


def qualified_name(schema: object, name: object) -> str:
    return f"{quote_identifier(schema, 'schema')}.{quote_identifier(name, 'procedure')}"


def to_parameter_value(value: object, where: str) -> str:
    """The Data API's string form of one value; None and '' must not get here (see below)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidRequestError(f"{where} is {value!r}; only finite numbers can be sent")
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, str):
        return value
    raise InvalidRequestError(
        f"{where} has type {type(value).__name__}; allowed: str, int, float, Decimal, bool, "
        "date, datetime, time or None"
    )


def call_procedure_sql(
    schema: str, name: str, args: Sequence[ArgValue] | Mapping[str, ArgValue] = ()
) -> tuple[str, dict[str, str]]:
    """``CALL "schema"."name"(...)`` with every argument a ``:pN`` placeholder.

    The Data API cannot bind NULL (a parameter needs a value) nor an empty string (the value
    must be at least one character), so those two become the SQL constants ``NULL`` and
    ``''``: fixed text chosen by type, never by content. A mapping passes arguments by
    position in its iteration order; its keys only name them in errors.
    """
    target = qualified_name(schema, name)
    items = list(args.items()) if isinstance(args, Mapping) else list(enumerate(args, 1))
    placeholders: list[str] = []
    parameters: dict[str, str] = {}
    for position, (label, value) in enumerate(items, 1):
        if value is None:
            placeholders.append("NULL")
        elif isinstance(value, str) and value == "":
            placeholders.append("''")
        else:
            key = f"p{position}"
            parameters[key] = to_parameter_value(value, f"argument {label!r} of {target}")
            placeholders.append(f":{key}")
    return f"CALL {target}({', '.join(placeholders)})", parameters


def split_procedure_name(procedure: object) -> tuple[str, str]:
    """``"schema.name"`` into its two parts (validated when the CALL is built)."""
    if not isinstance(procedure, str) or "." not in procedure:
        raise InvalidRequestError(
            f"procedure {procedure!r} is invalid; allowed: 'schema.name', e.g. "
            "'stg_mystore.sp_run_incremental_load'"
        )
    schema, _, name = procedure.partition(".")
    return schema, name
