"""A local AWS endpoint: one HTTP server on 127.0.0.1 that speaks the AWS JSON protocol.

Real boto3 clients talk to it unchanged (``endpoint_url=`` or ``AWS_ENDPOINT_URL_*``), so
the orchestration code has a single code path for AWS and for the embedded default.
Services register under their ``X-Amz-Target`` prefix (``RedshiftData``, ``AWSGlue``);
this module only does HTTP, identity, error framing and fault injection.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.core import Call, Service, ServiceError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024
# JSON nesting a request may have. The deepest modeled member of a served operation is a few
# levels down; the cap keeps a hostile body from exhausting the parser's or validator's stack.
MAX_JSON_DEPTH = 64
# Seconds a client may take to send its headers and body before the connection is closed.
REQUEST_READ_TIMEOUT = 60
_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/")


def identity_from_headers(authorization: str | None) -> str:
    """The caller identity is the access key id of the request's SigV4 credential scope.

    The real Data API scopes statements to the IAM session that submitted them; the access
    key is the closest stand-in that boto3 sends on every call. Like AWS, an unsigned
    request is refused (MissingAuthenticationTokenException, 403) and a header without a
    credential scope is an IncompleteSignatureException; the signature itself is not checked.
    """
    if not authorization:
        raise ServiceError(
            "MissingAuthenticationTokenException", "Missing Authentication Token", 403
        )
    match = _CREDENTIAL_RE.search(authorization)
    if match is None:
        raise ServiceError(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential' parameter "
            "(a SigV4 header: AWS4-HMAC-SHA256 Credential=<access key>/<scope>, ...).",
        )
    return match.group(1)


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/objects deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_body(raw_body: bytes) -> dict[str, Any]:
    """The request's JSON object; anything else is a SerializationException (400), never a 500."""
    try:
        body = json.loads(raw_body or b"{}")
    except RecursionError as exc:
        raise ServiceError(
            "SerializationException",
            f"Request body nests JSON deeper than the {MAX_JSON_DEPTH} levels allowed.",
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(
            "SerializationException", f"Request body is not valid JSON: {exc}"
        ) from exc
    if not isinstance(body, dict):
        raise ServiceError("SerializationException", "Request body must be a JSON object")
    if json_depth_exceeds(body, MAX_JSON_DEPTH):
        raise ServiceError(
            "SerializationException",
            f"Request body nests JSON deeper than the {MAX_JSON_DEPTH} levels allowed.",
        )
    return body


@dataclass
class Faults:
    """Per-operation fault injection for tests and the chaos suite (thread-safe).

    ``throttle(op, n)`` answers the next n calls with ThrottlingException (400);
    ``server_error(op, n, processed=...)`` answers them with a 500 (``code``, default
    ``InternalFailure``), after doing the work when ``processed`` (the caller sees a 5xx for
    work that was done) or without doing it; ``latency(op, s)`` delays every call
    (``times=n``: the next n); ``drop_after(op, n)`` processes the next n calls and then
    closes the connection without answering, as a network failure after the server did the
    work would. An operation of ``"*"`` matches every operation. ``fired`` counts the faults
    that actually hit a call, by kind (``server_error`` / ``server_error_after`` for the
    unprocessed / processed 500s), so a chaos run reports what it injected.
    """

    _throttle: dict[str, int] = field(default_factory=dict)
    _latency: dict[str, float] = field(default_factory=dict)
    _latency_times: dict[str, int] = field(default_factory=dict)
    _drop: dict[str, int] = field(default_factory=dict)
    # (operation, processed) -> (calls left, error code)
    _server_error: dict[tuple[str, bool], tuple[int, str]] = field(default_factory=dict)
    fired: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def throttle(self, operation: str, times: int) -> None:
        with self._lock:
            self._throttle[operation] = times

    def latency(self, operation: str, seconds: float, times: int | None = None) -> None:
        """Delay calls of ``operation`` by ``seconds``: every call, or the next ``times``."""
        with self._lock:
            self._latency[operation] = seconds
            if times is None:
                self._latency_times.pop(operation, None)
            else:
                self._latency_times[operation] = times

    def drop_after(self, operation: str, times: int) -> None:
        with self._lock:
            self._drop[operation] = times

    def server_error(
        self, operation: str, times: int, *, processed: bool = False, code: str = "InternalFailure"
    ) -> None:
        with self._lock:
            self._server_error[(operation, processed)] = (times, code)

    def clear(self) -> None:
        with self._lock:
            for table in (
                self._throttle,
                self._latency,
                self._latency_times,
                self._drop,
                self._server_error,
            ):
                table.clear()
            self.fired.clear()

    def _take(self, table: dict[str, int], operation: str, kind: str) -> bool:
        with self._lock:
            for key in (operation, "*"):
                if table.get(key, 0) > 0:
                    table[key] -= 1
                    self.fired[kind] += 1
                    return True
        return False

    def take_throttle(self, operation: str) -> bool:
        return self._take(self._throttle, operation, "throttle")

    def take_drop(self, operation: str) -> bool:
        return self._take(self._drop, operation, "drop_after")

    def take_server_error(self, operation: str) -> tuple[bool, str] | None:
        """(processed, code) when this call is to be answered with a 500, else None."""
        with self._lock:
            for key in (operation, "*"):
                for processed in (False, True):
                    left, code = self._server_error.get((key, processed), (0, ""))
                    if left > 0:
                        self._server_error[(key, processed)] = (left - 1, code)
                        self.fired["server_error_after" if processed else "server_error"] += 1
                        return processed, code
        return None

    def latency_for(self, operation: str) -> float:
        with self._lock:
            for key in (operation, "*"):
                if key not in self._latency:
                    continue
                remaining = self._latency_times.get(key)
                if remaining is None:
                    self.fired["latency"] += 1
                    return self._latency[key]
                if remaining > 0:
                    self._latency_times[key] = remaining - 1
                    self.fired["latency"] += 1
                    return self._latency[key]
            return 0.0


class _DroppedConnection(Exception):
    pass


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 resets connections when dozens of clients connect at once.
    request_queue_size = 256
    daemon_threads = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """End the keep-alive connections still open: ``shutdown()`` only stops accepting
        new ones, and a client's pooled connection was otherwise served on (a night attached
        to a stack being stopped ran to its end over them instead of being told)."""
        with self._open_lock:
            open_now = list(self._open)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (a long-poll given up, an injected drop) is
        # routine here; socketserver's default prints a traceback to stderr.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class AwsEndpoint:
    """The HTTP server. ``register`` services, then ``start`` it (a background thread)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.services: dict[str, Service] = {}
        self.faults = Faults()
        self._server = _Server((host, port), _make_handler(self))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def register(self, target_prefix: str, service: Service) -> None:
        """Route ``<target_prefix>.*`` calls to ``service`` (a ModeledService's
        ``target_prefix`` is the one its botocore model names)."""
        self.services[target_prefix] = service

    def start(self) -> AwsEndpoint:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="aws-endpoint", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for a serve loop, so only if one runs
            self._server.shutdown()
        self._server.server_close()
        self._server.close_open_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def dispatch(
        self, target: str | None, raw_body: bytes, authorization: str | None
    ) -> Mapping[str, Any]:
        """Route one request; every failure becomes a ServiceError the client can parse."""
        identity = identity_from_headers(authorization)
        if not target or "." not in target:
            raise ServiceError(
                "UnknownOperationException", f"Missing or bad X-Amz-Target: {target!r}"
            )
        prefix, operation = target.split(".", 1)
        service = self.services.get(prefix)
        if service is None:
            raise ServiceError(
                "UnknownOperationException",
                f"Unknown service target {prefix!r}; served: {', '.join(sorted(self.services))}",
            )
        body = parse_body(raw_body)
        if self.faults.take_throttle(operation):
            raise ServiceError("ThrottlingException", "Rate exceeded (injected fault)")
        delay = self.faults.latency_for(operation)
        if delay:
            threading.Event().wait(delay)
        failure = self.faults.take_server_error(operation)
        if failure is not None and not failure[0]:
            raise ServiceError(failure[1], "Internal failure (injected fault, not processed)", 500)
        result = service.handle(Call(operation=operation, body=body, identity=identity))
        if failure is not None:
            raise ServiceError(failure[1], "Internal failure (injected fault, processed)", 500)
        if self.faults.take_drop(operation):
            raise _DroppedConnection(operation)
        return result


def _make_handler(endpoint: AwsEndpoint) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes; without TCP_NODELAY, Nagle plus the
        # client's delayed ACK adds ~40 ms to every keep-alive response.
        disable_nagle_algorithm = True
        # A client that stops sending mid-request must not hold a server thread forever.
        timeout = REQUEST_READ_TIMEOUT

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

        def _refuse_unread(self, error: ServiceError) -> None:
            # The body is left unread, so this connection cannot carry another request.
            self._reply(error.status, error.payload())
            self.close_connection = True

        def do_POST(self) -> None:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                self._refuse_unread(
                    ServiceError(
                        "SerializationException",
                        "Chunked request bodies are not supported; send a Content-Length.",
                    )
                )
                return
            text = (self.headers.get("Content-Length") or "0").strip()
            if not text.isdigit():
                self._refuse_unread(
                    ServiceError(
                        "SerializationException",
                        f"Content-Length {text[:40]!r} is not a non-negative integer.",
                    )
                )
                return
            length = int(text)
            if length > MAX_BODY_BYTES:
                self._refuse_unread(
                    ServiceError(
                        "ValidationException",
                        f"Request body of {length} bytes is over the {MAX_BODY_BYTES}-byte limit",
                        413,
                    )
                )
                return
            raw = self.rfile.read(length)
            if len(raw) < length:  # the client hung up mid-body: nobody to answer
                self.close_connection = True
                return
            try:
                payload = dict(
                    endpoint.dispatch(
                        self.headers.get("X-Amz-Target"), raw, self.headers.get("Authorization")
                    )
                )
                self._reply(200, payload)
            except _DroppedConnection:
                self.close_connection = True
                self.connection.close()
            except ServiceError as err:
                self._reply(err.status, err.payload())
            except ConnectionError:
                # The client hung up before its answer went out (a killed process, a
                # long poll given up): nobody to answer, and no internal error either.
                log.debug("client of %s left before its answer", self.address_string())
                self.close_connection = True
            except Exception as exc:  # the endpoint must never die on a request
                log.exception("internal error")
                error = ServiceError("InternalServerException", f"Internal error: {exc}", 500)
                self._reply(500, error.payload())

        def do_GET(self) -> None:
            self._reply(200, {"services": sorted(endpoint.services)})

        def _reply(self, status: int, payload: Mapping[str, Any]) -> None:
            data = json.dumps(payload, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(data)

    return Handler
