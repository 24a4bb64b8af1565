"""Typed builders for Amazon States Language: small functions that return plain dicts.

The export composes these instead of writing ASL by hand so that every state has the same
shape (a Catch always records the error at one path, a Retry always has jitter), and so
that the finished graph can be checked here, before any validator or AWS sees it: a
dangling ``Next`` or an unreachable state is a bug in the export, reported by name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

State = dict[str, Any]

# Where a caught error is recorded in the state's data ({"Error": ..., "Cause": ...}).
ERROR_PATH = "$.error"
MAX_STATE_NAME = 80  # ASL limit on state names
_FORBIDDEN_IN_FORMAT = ("'", "{", "}", "\\")


class AslBuildError(ValueError):
    """The export cannot express something faithfully; it refuses instead of guessing."""


@dataclass(frozen=True)
class Retrier:
    """One ``Retry`` entry: backoff with full jitter, so parallel executions spread out."""

    errors: tuple[str, ...]
    interval_seconds: int
    max_attempts: int
    backoff_rate: float = 2.0
    max_delay_seconds: int | None = None
    jitter: bool = True

    def to_asl(self) -> dict[str, Any]:
        if self.interval_seconds < 1 or self.max_attempts < 0 or self.backoff_rate < 1:
            raise AslBuildError(
                f"retry on {list(self.errors)} is invalid: IntervalSeconds must be >= 1 (got "
                f"{self.interval_seconds}), MaxAttempts >= 0 (got {self.max_attempts}), "
                f"BackoffRate >= 1 (got {self.backoff_rate})"
            )
        entry: dict[str, Any] = {
            "ErrorEquals": list(self.errors),
            "IntervalSeconds": self.interval_seconds,
            "MaxAttempts": self.max_attempts,
            "BackoffRate": self.backoff_rate,
            "JitterStrategy": "FULL" if self.jitter else "NONE",
        }
        if self.max_delay_seconds is not None:
            entry["MaxDelaySeconds"] = self.max_delay_seconds
        return entry

    def longest_wait_seconds(self) -> int:
        """The most all of this Retry's pauses add up to (jitter only shortens a pause)."""
        cap = math.inf if self.max_delay_seconds is None else self.max_delay_seconds
        total, delay = 0.0, min(float(self.interval_seconds), cap)
        for _ in range(self.max_attempts):
            total += delay
            delay = min(delay * self.backoff_rate, cap)
        return math.ceil(total)


def catch_all(next_state: str, result_path: str = ERROR_PATH) -> dict[str, Any]:
    return {"ErrorEquals": ["States.ALL"], "Next": next_state, "ResultPath": result_path}


def task(
    resource: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    result_selector: Mapping[str, Any] | None = None,
    result_path: str | None = None,
    next_state: str | None = None,
    retry: Sequence[Retrier] = (),
    catch: Sequence[Mapping[str, Any]] = (),
    timeout_seconds: int | None = None,
    comment: str | None = None,
) -> State:
    """A JSONPath Task. ``result_path=None`` keeps the input as it was (``ResultPath: null``)."""
    state: State = {"Type": "Task", "Resource": resource, "ResultPath": result_path}
    if parameters is not None:
        state["Parameters"] = dict(parameters)
    if result_selector is not None:
        state["ResultSelector"] = dict(result_selector)
    if retry:
        state["Retry"] = [r.to_asl() for r in retry]
    if catch:
        state["Catch"] = [dict(c) for c in catch]
    if timeout_seconds is not None:
        state["TimeoutSeconds"] = timeout_seconds
    if comment:
        state["Comment"] = comment
    return _then(state, next_state)


def wait(seconds: int, next_state: str) -> State:
    if seconds < 0:
        raise AslBuildError(f"Wait seconds must be >= 0, got {seconds}")
    return {"Type": "Wait", "Seconds": seconds, "Next": next_state}


def jsonata_pass(output: str, next_state: str | None, comment: str | None = None) -> State:
    """A Pass state in JSONata: used only where JSONPath has no operator (dates, max, now)."""
    state: State = {"Type": "Pass", "QueryLanguage": "JSONata", "Output": jsonata(output)}
    if comment:
        state["Comment"] = comment
    return _then(state, next_state)


def result_pass(parameters: Mapping[str, Any], result_path: str, next_state: str) -> State:
    return {
        "Type": "Pass",
        "Parameters": dict(parameters),
        "ResultPath": result_path,
        "Next": next_state,
    }


def jsonata(expression: str) -> str:
    return "{% " + " ".join(expression.split()) + " %}"


def choice(
    rules: Sequence[Mapping[str, Any]], default: str, *, query_language: str = "JSONPath"
) -> State:
    state: State = {"Type": "Choice", "Choices": [dict(r) for r in rules], "Default": default}
    if query_language == "JSONata":
        state["QueryLanguage"] = "JSONata"
    return state


def when(condition: str, next_state: str) -> dict[str, Any]:
    """A JSONata Choice rule."""
    return {"Condition": jsonata(condition), "Next": next_state}


def fail(
    *,
    error: str | None = None,
    cause: str | None = None,
    error_path: str | None = None,
    cause_path: str | None = None,
) -> State:
    """A Fail state; ``*_path`` carry the real error (a JSONPath or States.Format)."""
    if (error is None) == (error_path is None) or (cause is None) == (cause_path is None):
        raise AslBuildError("a Fail state needs exactly one of Error/ErrorPath and Cause/CausePath")
    state: State = {"Type": "Fail"}
    for key, value in (
        ("Error", error),
        ("Cause", cause),
        ("ErrorPath", error_path),
        ("CausePath", cause_path),
    ):
        if value is not None:
            state[key] = value
    return state


def succeed() -> State:
    return {"Type": "Succeed"}


def parallel(branches: Sequence[Branch], next_state: str | None, comment: str) -> State:
    """Branches run at once; the first branch to fail stops the others and fails this state
    with that branch's error, which the execution then carries (no Catch to lose it)."""
    state: State = {
        "Type": "Parallel",
        "Branches": [b.to_asl() for b in branches],
        "ResultPath": None,
        "Comment": comment,
    }
    return _then(state, next_state)


def _then(state: State, next_state: str | None) -> State:
    if next_state is None:
        state["End"] = True
    else:
        state["Next"] = next_state
    return state


def format_call(template: str, *paths: str) -> str:
    """``States.Format('template', paths...)``; the constant parts are refused when they hold
    a character that would need escaping, so a name can never change the expression."""
    for text in template.split("{}"):
        bad = [c for c in _FORBIDDEN_IN_FORMAT if c in text]
        if bad:
            raise AslBuildError(
                f"text {text!r} cannot go into States.Format: it contains {bad}; "
                "allowed: names without quotes, braces or backslashes"
            )
    if template.count("{}") != len(paths):
        raise AslBuildError(f"template {template!r} needs {template.count('{}')} arguments")
    return f"States.Format('{template}'{''.join(', ' + p for p in paths)})"


class Branch:
    """An ordered set of named states with a start; checks the graph when finished."""

    def __init__(self, start_at: str) -> None:
        self.start_at = start_at
        self.states: dict[str, State] = {}

    def add(self, name: str, state: State) -> None:
        if len(name) > MAX_STATE_NAME:
            raise AslBuildError(f"state name {name!r} is longer than {MAX_STATE_NAME} characters")
        if name in self.states:
            raise AslBuildError(f"state name {name!r} is used twice")
        self.states[name] = state

    def to_asl(self) -> dict[str, Any]:
        check_graph(self.start_at, self.states)
        return {"StartAt": self.start_at, "States": dict(self.states)}


def _targets(state: Mapping[str, Any]) -> Iterable[str]:
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for rule in state.get("Choices", ()):
        yield rule["Next"]
    for catcher in state.get("Catch", ()):
        yield catcher["Next"]


def check_graph(start_at: str, states: Mapping[str, Mapping[str, Any]]) -> None:
    """Every transition lands on a state of this scope and every state is reachable."""
    if start_at not in states:
        raise AslBuildError(f"StartAt {start_at!r} is not a state")
    for name, state in states.items():
        for target in _targets(state):
            if target not in states:
                raise AslBuildError(f"state {name!r} goes to {target!r}, which does not exist")
    seen: set[str] = set()
    todo = [start_at]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_targets(states[name]))
    unreachable = sorted(set(states) - seen)
    if unreachable:
        raise AslBuildError(f"states {unreachable} are never reached")


def to_json(document: Mapping[str, Any]) -> str:
    """The byte-stable form every exported document is written in."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
