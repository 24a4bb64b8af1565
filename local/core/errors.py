"""The error every emulated service answers with, framed the way botocore parses modeled errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ServiceError(Exception):
    """An AWS error response: ``__type`` is the code, modeled members travel in ``fields``."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(code, message, status, dict(fields or {}))
        self.code = code
        self.message = message
        self.status = status
        self.fields = dict(fields or {})

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def payload(self) -> dict[str, Any]:
        """The error body: ``__type``, the message under both spellings, modeled members."""
        return {
            "__type": self.code,
            "message": self.message,
            "Message": self.message,
            **self.fields,
        }


def unknown_operation(message: str) -> ServiceError:
    return ServiceError("UnknownOperationException", message)
