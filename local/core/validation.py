"""Request validation from botocore's service models, with errors a person can act on.

botocore's ``ParamValidator`` walks a request against the operation's input shape and
finds missing required members, unknown members and wrong types. It leaves out, on
purpose (a client must not refuse what a newer server accepts), what a server checks: the
maximum length or value, enums and patterns, and it takes ``True`` for an integer. A server
must check those too, so this subclass adds them from the same model. Each problem names the
member, the bad value and what is allowed; the first one answers the operation's modeled
validation error (``ValidationException``, or ``InvalidInputException`` where, as in Glue,
that is the service's only input error).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from botocore.model import ServiceModel, Shape
from botocore.validate import ParamValidator, ValidationErrors

from local.core.errors import ServiceError

_VALIDATION_CODES = ("ValidationException", "InvalidInputException")
_NUMBERS = frozenset({"integer", "long", "float", "double"})
# Each model type: its JSON types as the JSON protocol carries them (timestamps as epoch
# seconds, blobs as base64 text; booleans are never numbers), and how a message names it.
_JSON_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "string": ((str,), "a string"),
    "integer": ((int,), "an integer"),
    "long": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "double": ((int, float), "a number"),
    "boolean": ((bool,), "a boolean"),
    "timestamp": ((int, float, str), "a timestamp (epoch seconds)"),
    "blob": ((str,), "base64 text"),
    "structure": ((dict,), "an object"),
    "map": ((dict,), "an object"),
    "list": ((list,), "a list"),
}
# Java regexes match astral characters as surrogate pairs; Python matches code points.
_SURROGATE_RANGE = re.compile(
    r"\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})-\\u(D[89AB][0-9A-F]{2})\\u(D[C-F][0-9A-F]{2})",
    re.IGNORECASE,
)


def short(value: Any) -> str:
    """``repr`` cut to 80 characters: enough to recognise a value, never a 100 KB SQL."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _astral(match: re.Match[str]) -> str:
    low = (int(match[1], 16) - 0xD800) * 0x400 + int(match[2], 16) - 0xDC00 + 0x10000
    high = (int(match[3], 16) - 0xD800) * 0x400 + int(match[4], 16) - 0xDC00 + 0x10000
    return f"\\U{low:08X}-\\U{high:08X}"


@cache
def compiled_pattern(pattern: str) -> re.Pattern[str] | None:
    """The model's (Java) pattern as a Python regex; None if Python cannot read it."""
    try:
        return re.compile(_SURROGATE_RANGE.sub(_astral, pattern))
    except re.error:
        return None


def type_word(shape: Shape) -> str:
    minimum = shape.metadata.get("min")
    if shape.type_name == "string" and minimum == 1 and "max" not in shape.metadata:
        return "a non-empty string"
    if shape.type_name == "list" and minimum == 1 and "max" not in shape.metadata:
        return "a non-empty list"
    return _JSON_TYPES[shape.type_name][1] if shape.type_name in _JSON_TYPES else shape.type_name


def has_json_type(value: Any, shape: Shape) -> bool:
    if isinstance(value, bool) and shape.type_name in _NUMBERS:
        return False
    return isinstance(value, _JSON_TYPES.get(shape.type_name, ((object,), ""))[0])


def _bounds(minimum: Any, maximum: Any, unit: str = "") -> str:
    if minimum is not None and maximum is not None:
        return f"from {minimum} to {maximum}{unit}"
    return f"at least {minimum}{unit}" if minimum is not None else f"at most {maximum}{unit}"


def constraint_problem(value: Any, shape: Shape, name: str) -> str | None:
    """What the value breaks of the shape's min, max, enum or pattern (value of right type)."""
    meta = shape.metadata
    minimum, maximum = meta.get("min"), meta.get("max")
    if shape.type_name in ("string", "list", "map"):
        size = len(value)
        if (minimum is not None and size < minimum) or (maximum is not None and size > maximum):
            if shape.type_name == "string":
                if minimum == 1 and maximum is None:
                    return f"{name} must be {type_word(shape)}, got {short(value)}."
                if maximum is not None and size > maximum:
                    return f"{name} must be at most {maximum} characters, got {size}."
                return f"{name} must be {_bounds(minimum, maximum, ' characters')}, got {size}."
            if minimum == 1 and maximum is None:
                return f"{name} must be {type_word(shape)}, got {short(value)}."
            items = (
                f"{minimum} to {maximum}"
                if None not in (minimum, maximum)
                else _bounds(minimum, maximum)
            )
            return f"{name} must have {items} items, got {size}."
    elif shape.type_name in _NUMBERS and (
        (minimum is not None and value < minimum) or (maximum is not None and value > maximum)
    ):
        return f"{name} must be {_bounds(minimum, maximum)}, got {value}."
    if shape.type_name == "string":
        if "\x00" in value:
            # PostgreSQL and Redshift text cannot hold NUL; refused here, not a 500 later.
            return (
                f"{name} contains a NUL character (\\x00) at position {value.index(chr(0))}; "
                "text values cannot hold it."
            )
        enum = meta.get("enum")
        if enum and value not in enum:
            return f"{name} {short(value)} is not one of {', '.join(enum)}."
        pattern = compiled_pattern(meta["pattern"]) if "pattern" in meta else None
        if pattern is not None and not pattern.fullmatch(value):
            return f"{name} {short(value)} must match {meta['pattern']}."
    return None


class _Problems(ValidationErrors):
    """The messages of one request's problems, in the order they were found."""

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where
        self.messages: list[str] = []

    @staticmethod
    def path(name: str, member: str | None = None) -> str:
        name = name.lstrip(".")
        if member is None:
            return name
        return f"{name}.{member}" if name else member

    def report(self, name: str, reason: str, **kwargs: Any) -> None:
        if reason == "missing required field":
            self.messages.append(f"{self.path(name, kwargs['required_name'])} is required.")
        elif reason == "unknown field":
            member = self.path(name, kwargs["unknown_param"])
            owner = f"a member of {self.path(name)}" if name else f"a parameter of {self.where}"
            allowed = ", ".join(kwargs["valid_names"])
            self.messages.append(f"{member} is not {owner}; allowed: {allowed}.")
        elif reason in ("invalid length", "invalid range"):
            pass  # reported, with the maximum too, by constraint_problem
        elif reason == "invalid type":  # JSON types are checked first: a bad timestamp text
            self.messages.append(
                f"{self.path(name)} must be a timestamp, got {short(kwargs['param'])}."
            )
        else:  # a tagged union setting no member or several; a document of the wrong type
            members = kwargs.get("members")
            detail = f" (one of: {', '.join(members)})" if members else ""
            self.messages.append(f"{self.path(name) or 'the request'}: {reason}{detail}.")

    def add(self, message: str) -> None:
        self.messages.append(message)


class _ModelValidator(ParamValidator):
    # Every member goes through _validate, even list items without botocore-checked metadata.
    def _shape_has_constraints(self, shape: Shape) -> bool:
        return True

    def problems(self, params: Mapping[str, Any], shape: Shape, where: str) -> list[str]:
        errors = _Problems(where)
        self._validate(dict(params), shape, errors, "")
        return errors.messages

    def _validate(self, params: Any, shape: Shape, errors: Any, name: str) -> None:
        path = _Problems.path(name) or "the request"
        if params is not None and not has_json_type(params, shape):
            errors.add(f"{path} must be {type_word(shape)}, got {short(params)}.")
            return
        super()._validate(params, shape, errors, name)  # type: ignore[misc]  # not in the stubs
        if params is not None and (problem := constraint_problem(params, shape, path)):
            errors.add(problem)


class RequestValidator:
    """Checks request bodies against one service model's input shapes."""

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self._validator = _ModelValidator()

    def error_code(self, operation: str) -> str:
        """The operation's modeled input error (Glue has no ValidationException)."""
        modeled = {shape.name for shape in self.model.operation_model(operation).error_shapes}
        return next((code for code in _VALIDATION_CODES if code in modeled), _VALIDATION_CODES[0])

    def problems(self, operation: str, body: Mapping[str, Any]) -> list[str]:
        shape = self.model.operation_model(operation).input_shape
        if shape is not None:
            return self._validator.problems(body, shape, operation)
        return [f"{operation} takes no parameters, got {', '.join(body)}."] if body else []

    def check(self, operation: str, body: Mapping[str, Any]) -> None:
        """Raise the operation's validation error naming the first problem of ``body``."""
        problems = self.problems(operation, body)
        if problems:
            raise ServiceError(self.error_code(operation), problems[0])
