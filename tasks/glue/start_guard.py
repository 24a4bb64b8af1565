"""No blind resend of StartJobRun: an answer that may hide a started run ends the call.

Glue has no idempotency token for StartJobRun, so when the first attempt's answer is lost
(the connection closed or timed out after the request went out, or Glue answered 5xx) the
run may exist already. botocore's retry handler would send the request again and start a
second, billed run. ``refuse_blind_resend`` registers a handler on the client's
``needs-retry.glue.StartJobRun`` event that raises ``GlueStartAmbiguousError`` instead;
the runner then looks the run up by its run key and reattaches (``runner.py``).

How it fits botocore (``botocore/endpoint.py`` ``_needs_retry``): after every attempt the
endpoint emits ``needs-retry.<service>.<Operation>`` with ``response``,
``caught_exception``, ``request_dict`` and ``attempts``; the hierarchical emitter calls the
most specific handlers first, so this one runs before the retry handler botocore registers
on ``needs-retry.glue`` (any mode: legacy, standard, adaptive), and an exception raised
here leaves ``make_api_call`` as it is. Failures that prove the request never reached
Glue (no connection made) and 4xx answers (throttling, concurrency: Glue refused the work)
are left to botocore's own retry policy, because resending them cannot start a second run.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ProxyConnectionError,
)

from tasks.jobs import ReattachableError

if TYPE_CHECKING:
    from mypy_boto3_glue import GlueClient

START_EVENT = "needs-retry.glue.StartJobRun"
_HANDLER_ID = "mystore-elt-glue-start-no-blind-resend"
# Raised before a byte of the request left this machine: resending cannot start a run twice.
_NEVER_SENT = (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)


class GlueStartAmbiguousError(ReattachableError):
    """StartJobRun's answer was lost or was a 5xx: the run may or may not have started.

    Retrying is safe only by looking the run up by its run key first, which is what the
    runner and a retried task do; resending StartJobRun as is could start a second run.
    """


def _request_names(request_dict: Any) -> tuple[str, str]:
    """The job name and run key of the StartJobRun body, for the message (never the other
    arguments: their values may be secrets)."""
    try:
        body = json.loads(request_dict.get("body") or b"{}")
        job = str(body.get("JobName", "?"))
        key = str((body.get("Arguments") or {}).get("--orchestrator_run_key", "-"))
    except (AttributeError, TypeError, ValueError):
        return "?", "-"
    return job, key


def _refuse_ambiguous_resend(
    *,
    response: Any = None,
    caught_exception: BaseException | None = None,
    request_dict: Any = None,
    attempts: int = 1,
    **_: Any,
) -> None:
    """A ``needs-retry`` handler: raise on an ambiguous failure, else let botocore decide."""
    if caught_exception is not None:
        if isinstance(caught_exception, _NEVER_SENT):
            return None
        job, key = _request_names(request_dict)
        raise GlueStartAmbiguousError(
            f"StartJobRun for Glue job {job} (run key {key}) got no answer after attempt "
            f"{attempts} ({type(caught_exception).__name__}); the run may have started, so "
            "it is looked up by its run key instead of being sent again"
        ) from caught_exception
    if response is None:
        return None
    http_response, parsed = response
    status = getattr(http_response, "status_code", 0)
    if not isinstance(status, int) or status < 500:
        return None
    job, key = _request_names(request_dict)
    cause = ClientError(parsed, "StartJobRun")
    code = parsed.get("Error", {}).get("Code", "?") if isinstance(parsed, dict) else "?"
    raise GlueStartAmbiguousError(
        f"StartJobRun for Glue job {job} (run key {key}) was answered {status} {code} after "
        f"attempt {attempts}; the run may have started, so it is looked up by its run key "
        "instead of being sent again"
    ) from cause


def refuse_blind_resend(client: GlueClient) -> GlueClient:
    """Make ``client`` raise ``GlueStartAmbiguousError`` where botocore would resend an
    ambiguous StartJobRun; idempotent (one handler per client, whoever built it)."""
    client.meta.events.register(START_EVENT, _refuse_ambiguous_resend, unique_id=_HANDLER_ID)
    return client
