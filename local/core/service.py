"""The shared HTTP mapping of every emulated service, written once.

Like moto's ``BaseResponse``, a service is a class with one method per operation, named
as botocore names the client method (``ExecuteStatement`` -> ``execute_statement``). What
the service speaks comes from botocore's own service model: the ``X-Amz-Target`` prefix,
the operation names, and the input shapes every request is validated against before its
method runs, so the emulator cannot accept what the real API would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Protocol

import botocore.session
from botocore import xform_name
from botocore.model import ServiceModel

from local.core.errors import ServiceError, unknown_operation
from local.core.shapes import output_problems
from local.core.validation import RequestValidator


@dataclass(frozen=True)
class Call:
    """One request as a service sees it: the operation, the JSON body, the caller."""

    operation: str
    body: Mapping[str, Any]
    identity: str


class Service(Protocol):
    """Anything the endpoint can route to: answers one call with a JSON-serializable dict."""

    def handle(self, call: Call) -> Mapping[str, Any]: ...


@cache
def service_model(name: str) -> ServiceModel:
    """botocore's model of ``name`` (e.g. ``redshift-data``, ``glue``), loaded once."""
    return botocore.session.get_session().get_service_model(name)


class ModeledService:
    """Base of the emulated services: model-driven routing and request validation.

    Subclasses set ``service_name`` (botocore's name) and define a method per operation they
    implement, taking the ``Call``. An operation the model does not know is an
    UnknownOperationException; one it knows that is not implemented here answers the
    service's validation error saying so. With ``strict_responses`` (the tests turn it on)
    every answer is also checked against the operation's output shape, and a departure
    answers InternalServerException naming it.
    """

    service_name: ClassVar[str]

    def __init__(self) -> None:
        self.model = service_model(self.service_name)
        self.validator = RequestValidator(self.model)
        self.strict_responses = False

    @property
    def target_prefix(self) -> str:
        return str(self.model.metadata["targetPrefix"])

    def implemented_operations(self) -> list[str]:
        return [op for op in self.model.operation_names if callable(self._method(op))]

    def _method(self, operation: str) -> Any:
        return getattr(self, xform_name(operation), None)

    def handle(self, call: Call) -> Mapping[str, Any]:
        if call.operation not in self.model.operation_names:
            raise unknown_operation(
                f"{self.target_prefix}.{call.operation} is not an operation of "
                f"{self.model.metadata['serviceFullName']}."
            )
        method = self._method(call.operation)
        if not callable(method):
            raise ServiceError(
                self.validator.error_code(call.operation),
                f"{call.operation} is not supported by the local endpoint; supported: "
                f"{', '.join(self.implemented_operations())}.",
            )
        self.validator.check(call.operation, call.body)
        result: Mapping[str, Any] = method(call)
        if self.strict_responses:
            problems = output_problems(self.model, call.operation, result)
            if problems:
                raise ServiceError(
                    "InternalServerException",
                    f"The local {call.operation} response departs from botocore's model: "
                    + "; ".join(problems),
                    500,
                )
        return result
