"""One call's HTTP exchanges, under its rules, over any transport.

``Call`` holds what every request of one call shares: the clock (``total``), the retry
budget, the proxy and TLS settings (with the environment's). It sends with retries and
redirects, reads bodies with the right timeout, and turns a transport's failures into the
SDK's typed errors. This is the one copy of those rules: the transports only move bytes.
"""

from __future__ import annotations

import logging
import time
from typing import List, Mapping, Optional, Tuple

from ._environment import proxy_from_environment, verify_from_environment
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    OpchatgptsError,
    RemoteProtocolError,
    ResponseTooLargeError,
    StreamError,
    StreamInterruptedError,
    StreamTimeoutError,
    TLSVerificationError,
)
from ._options import CallOptions
from ._protocol.request import HTTPRequest, redirected_request
from ._protocol.response import MAX_ERROR_BODY_BYTES, error_from_response
from ._protocol.retry import RetryBudget
from ._transports.base import (
    AsyncResponse,
    AsyncTransport,
    ConnectOptions,
    Timeouts,
    TransportFailure,
    origin,
)

__all__ = ["Call", "MAX_REDIRECTS"]

log = logging.getLogger("opchatgpts")

MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: After the end event, how long and how much of the rest of a body is read, so that the
#: connection can be reused.
_FINISH_SECONDS = 1.0
_FINISH_MAX_BYTES = 64 * 1024


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _count_attempts(error: OpchatgptsError, attempts: int) -> None:
    """Note on ``error`` how many tries it took; its message says so when there were several."""
    error.attempts = attempts
    message = getattr(error, "message", None)
    if attempts > 1 and isinstance(message, str):
        error.message = f"{message} (after {attempts} attempts)"  # type: ignore[attr-defined]
        error.args = (error.message,)  # type: ignore[attr-defined]


class Call:
    """The clock, retry budget and connection rules of one call, for all its requests."""

    def __init__(self, transport: AsyncTransport, options: CallOptions) -> None:
        self.transport = transport
        self.options = options
        total = options.timeout.total
        self.deadline = None if total is None else time.monotonic() + total
        self.budget = RetryBudget(options.retry.max_retries)

    def remaining(self) -> Optional[float]:
        """Seconds left of ``total`` (``None``: no limit)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _connect_options(self, url: str) -> ConnectOptions:
        options = self.options
        proxy, verify = options.proxy, options.verify
        if options.trust_env:
            proxy = proxy or proxy_from_environment(url)
            try:
                verify = verify_from_environment(verify)
            except OSError as exc:
                raise TLSVerificationError(
                    f"the CA bundle the environment names cannot be read: {exc}", url=url
                ) from None
        return ConnectOptions(proxy, verify)

    # -- sending ------------------------------------------------------------------------

    async def open(self, request: HTTPRequest) -> AsyncResponse:
        """Send ``request`` (retrying and following redirects); return a 2xx response, or
        raise the typed error of the refusal or failure.

        The first attempt is made directly: most succeed, and need no retry machinery.
        Tenacity takes over once it failed, from that failure (its attempt 1).
        """
        try:
            return await self._open_once(request, 1)
        except OpchatgptsError as exc:
            failed = exc
        retrying = self.options.retry.async_retrying(self.budget, self.remaining(), self.transport.sleep)
        attempt = 0
        try:
            async for step in retrying:
                with step:
                    attempt = step.retry_state.attempt_number
                    if attempt == 1:
                        raise failed
                    return await self._open_once(request, attempt)
        except OpchatgptsError as exc:
            _count_attempts(exc, attempt)
            raise
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def _open_once(self, request: HTTPRequest, attempt: int) -> AsyncResponse:
        """One attempt: send, follow redirects, and return a 2xx response or raise its error."""
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._send(request, attempt)
            if 200 <= response.status < 300:
                return response
            try:
                body = await self._read_refusal(response)
            finally:
                await response.aclose()
            location = response.headers.get("Location")
            if response.status in _REDIRECT_STATUSES and location:
                try:
                    request = redirected_request(request, location)
                except ValueError as exc:
                    raise APIStatusError(
                        str(exc), status_code=response.status, headers=response.headers, url=request.url
                    ) from None
                log.debug("following a %d redirect to %s", response.status, request.url)
                continue
            raise error_from_response(response.status, response.headers, body, request.url)
        # A redirect loop is the site's answer, not a connection problem: never retried.
        raise APIStatusError(
            f"more than {MAX_REDIRECTS} redirects", status_code=response.status,
            headers=response.headers, url=request.url,
        )

    async def _send(self, request: HTTPRequest, attempt: int) -> AsyncResponse:
        timeout = self.options.timeout
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise self._total_ran_out(request.url, before_answer=True)
        started = time.monotonic()
        try:
            limits = Timeouts(timeout.connect, timeout.read, remaining)
            response = await self.transport.open(request, self._connect_options(request.url), limits)
        except TransportFailure as failure:
            log.debug("%s %s failed: %s (attempt %d)", request.method, request.url, failure, attempt)
            raise self._send_error(failure, request.url, remaining) from failure.__cause__
        log.debug(
            "%s %s -> %d (%.0f ms, attempt %d)",
            request.method, request.url, response.status, (time.monotonic() - started) * 1000, attempt,
        )
        return response

    def _send_error(self, failure: TransportFailure, url: str, remaining: Optional[float]) -> OpchatgptsError:
        where = origin(url)
        timeout = self.options.timeout
        if failure.kind in ("connect_timeout", "read_timeout"):
            limit = timeout.connect if failure.kind == "connect_timeout" else timeout.read
            if remaining is not None and (limit is None or remaining <= limit):
                return self._total_ran_out(url, before_answer=True)
            if failure.kind == "connect_timeout":
                return APITimeoutError(
                    f"no connection to {where} within the connect timeout ({_seconds(limit or 0)})", url=url
                )
            return APITimeoutError(
                f"no answer from {where} within the read timeout ({_seconds(limit or 0)})", url=url
            )
        if failure.kind == "tls":
            hint = ""
            if failure.certificate:
                hint = "; if you trust this server, pass verify=<an ssl.SSLContext> or verify=False"
            return TLSVerificationError(f"TLS with {where} failed: {failure.detail}{hint}", url=url)
        return APIConnectionError(f"cannot reach {where}: {failure.detail}", url=url)

    def _total_ran_out(self, url: str, *, before_answer: bool) -> OpchatgptsError:
        total = _seconds(self.options.timeout.total or 0)
        if before_answer:
            message = f"the total timeout ({total}) ran out before {origin(url)} answered"
            return APITimeoutError(message, url=url)
        return StreamTimeoutError(f"the total timeout ({total}) ran out during the answer from {origin(url)}")

    # -- reading ------------------------------------------------------------------------

    def idle_until(self, since: Optional[float] = None) -> Optional[float]:
        """When the read timeout runs out for a read that starts now (or ``since``)."""
        read = self.options.timeout.read
        return None if read is None else (time.monotonic() if since is None else since) + read

    async def read(self, response: AsyncResponse, idle_until: Optional[float]) -> bytes:
        """The next bytes of an answer's body, ``b""`` at its end.

        ``idle_until`` is when the read timeout runs out (the last event plus ``read``):
        the time between two events is bounded, not merely between two bytes.
        """
        now = time.monotonic()
        limit, total_binds = idle_until, False
        if self.deadline is not None and (limit is None or self.deadline <= limit):
            limit, total_binds = self.deadline, True
        timeout = None if limit is None else limit - now
        if timeout is not None and timeout <= 0:
            raise self._read_ran_out(response.url, total_binds)
        try:
            return await response.read(timeout)
        except TransportFailure as failure:
            if failure.kind == "read_timeout":
                raise self._read_ran_out(response.url, total_binds) from failure.__cause__
            raise self._body_error(failure, response.url) from failure.__cause__

    def _read_ran_out(self, url: str, total_binds: bool) -> StreamError:
        if total_binds:
            error = self._total_ran_out(url, before_answer=False)
        else:
            read = _seconds(self.options.timeout.read or 0)
            error = StreamTimeoutError(f"no event from {origin(url)} for {read} (the read timeout)")
        error.url = url
        return error  # type: ignore[return-value]

    @staticmethod
    def _body_error(failure: TransportFailure, url: str) -> StreamError:
        where = origin(url)
        error: StreamError
        if failure.kind == "decode":
            error = RemoteProtocolError(f"the answer from {where} cannot be decoded: {failure.detail}")
        else:
            error = StreamInterruptedError(
                f"the connection to {where} broke during the answer: {failure.detail}"
            )
        error.url = url
        return error

    async def _read_refusal(self, response: AsyncResponse) -> bytes:
        """Enough of a refusal's body to explain it; a body that fails to arrive explains
        nothing, and is no error of its own."""
        chunks: List[bytes] = []
        size = 0
        try:
            while size < MAX_ERROR_BODY_BYTES:
                chunk = await self.read(response, self.idle_until())
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except StreamError:
            pass
        return b"".join(chunks)[:MAX_ERROR_BODY_BYTES]

    async def finish(self, response: AsyncResponse) -> None:
        """The answer is complete: read what is left of the body (briefly, and a little), so
        that the connection can be reused. Never raises."""
        until = time.monotonic() + _FINISH_SECONDS
        size = 0
        try:
            while size <= _FINISH_MAX_BYTES:
                chunk = await response.read(max(0.0, until - time.monotonic()))
                if not chunk:
                    return
                size += len(chunk)
        except TransportFailure:
            pass

    async def fetch(
        self, request: HTTPRequest, limit: int = MAX_ERROR_BODY_BYTES
    ) -> Tuple[int, Mapping[str, str], bytes]:
        """Send a small request and read its whole body (more than ``limit`` bytes is an error)."""
        response = await self.open(request)
        try:
            chunks: List[bytes] = []
            size = 0
            while True:
                chunk = await self.read(response, self.idle_until())
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLargeError(f"{request.url} sent more than {limit} bytes")
            return response.status, response.headers, b"".join(chunks)
        finally:
            await response.aclose()
