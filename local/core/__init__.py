"""What every emulated service shares: the error type, model-driven routing and request
validation (``ModeledService``), and the response check against botocore's output shapes."""

from local.core.errors import ServiceError
from local.core.service import Call, ModeledService, Service, service_model
from local.core.shapes import output_problems
from local.core.validation import RequestValidator, short

__all__ = [
    "Call",
    "ModeledService",
    "RequestValidator",
    "Service",
    "ServiceError",
    "output_problems",
    "service_model",
    "short",
]
