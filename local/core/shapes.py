"""Responses checked against botocore's output shapes: what a real client may rely on.

botocore's parser silently drops members it does not know and does not insist on required
ones, so a response that drifted from the real API would pass through boto3 unnoticed. The
checker reads the JSON as it went over the wire and reports each required member that is
missing, each member the model does not have, each value of the wrong JSON type or outside
its enum, and each union that does not set exactly one member.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.model import ListShape, MapShape, ServiceModel, Shape, StringShape, StructureShape

from local.core.validation import has_json_type, short, type_word


def output_problems(model: ServiceModel, operation: str, payload: Mapping[str, Any]) -> list[str]:
    """Where ``payload`` (the response body of ``operation``) departs from its output shape."""
    shape = model.operation_model(operation).output_shape
    if shape is None:
        return [f"{operation} has no output, got {short(dict(payload))}"] if payload else []
    problems: list[str] = []
    _check(payload, shape, operation, problems)
    return problems


def _check(value: Any, shape: Shape, path: str, problems: list[str]) -> None:
    if value is None:
        problems.append(f"{path} is null; the model has no nulls (leave the member out)")
        return
    if not has_json_type(value, shape):
        problems.append(f"{path} must be {type_word(shape)} ({shape.name}), got {short(value)}")
        return
    if isinstance(shape, StructureShape):
        _check_structure(value, shape, path, problems)
    elif isinstance(shape, ListShape):
        for index, item in enumerate(value):
            _check(item, shape.member, f"{path}[{index}]", problems)
    elif isinstance(shape, MapShape):
        for key, item in value.items():
            _check(key, shape.key, f"{path} key {key!r}", problems)
            _check(item, shape.value, f"{path}.{key}", problems)
    elif isinstance(shape, StringShape) and shape.enum and value not in shape.enum:
        problems.append(f"{path} {short(value)} is not one of {', '.join(shape.enum)}")


def _check_structure(
    value: Mapping[str, Any], shape: StructureShape, path: str, problems: list[str]
) -> None:
    members = shape.members
    for name in shape.required_members:
        if name not in value:
            problems.append(f"{path}.{name} is required by {shape.name} but missing")
    for name, item in value.items():
        if name not in members:
            problems.append(f"{path}.{name} is not a member of {shape.name}")
        else:
            _check(item, members[name], f"{path}.{name}", problems)
    if shape.is_tagged_union and len(value) != 1:
        problems.append(
            f"{path} is a {shape.name} union and must set exactly one member, got {sorted(value)}"
        )
