"""Every answer the local endpoint gives in these tests is checked against botocore's output
shape of its operation (``ModeledService.strict_responses``): a response that drifted from
the real API answers InternalServerException naming the difference, and the test fails."""

from __future__ import annotations

import pytest

from local.core import ModeledService
from local.endpoint import AwsEndpoint
from local.stack import LocalStack


def strict(endpoint: AwsEndpoint) -> AwsEndpoint:
    """Turn on the output-shape check for every modeled service on ``endpoint``."""
    for service in endpoint.services.values():
        if isinstance(service, ModeledService):
            service.strict_responses = True
    return endpoint


@pytest.fixture(scope="session")
def local_stack(local_stack: LocalStack) -> LocalStack:
    """The session's local stack (tests/conftest.py), its services answering strictly."""
    strict(local_stack.endpoint)
    return local_stack
