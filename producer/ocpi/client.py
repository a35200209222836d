"""The aiohttp shell that talks to one partner: headers, pacing, timeouts, retries, page spans.

Decisions (what to retry, how long to wait, whether a link is safe, what the envelope says) are
made by the pure modules; this module only performs I/O and records what happened.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import aiohttp
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from pydantic import SecretStr
from yarl import URL

from producer.errors import (
    PartnerAuthError,
    PartnerProtocolError,
    PartnerTlsError,
    PartnerUnavailableError,
    PullError,
)
from producer.observe.redaction import redact_url
from producer.observe.telemetry import traceparent_of
from producer.ocpi.envelope import Envelope, parse_envelope
from producer.ocpi.headers import (
    RoutingHeaders,
    TokenEncoding,
    TokenEncodingChoice,
    TokenEncodingSetting,
    request_headers,
)
from producer.ocpi.ratelimit import RequestGate
from producer.ocpi.responses import FetchedPage, PageContext, RetryNotice, read_pagination
from producer.ocpi.retry import (
    Failure,
    RetryPolicy,
    attempts_allowed,
    is_retryable,
    parse_retry_after,
    retry_delay,
)

log = logging.getLogger("ocpi_puller")


class LinkGoneError(PartnerProtocolError):
    """A followed next link answered 404: a hub's one-shot page link that was already used."""


class _Attempt(Exception):
    """An attempt failed in a way the retry policy judges."""

    def __init__(self, failure: Failure, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason
        self.retry_after_s = retry_after_s


def ssl_context(ca_bundle: str | None, insecure: bool) -> ssl.SSLContext | bool:
    """TLS verification on by default; a custom CA bundle; disabling it is loud."""
    if insecure:
        log.warning("TLS certificate verification is DISABLED (--insecure-skip-tls-verify)")
        return False
    return ssl.create_default_context(cafile=ca_bundle)


class OcpiHttp:
    """One partner's HTTP session, shared by every window of a pull."""

    def __init__(
        self,
        *,
        token: SecretStr,
        ocpi_version: str | None,
        token_encoding: TokenEncodingSetting,
        correlation_id: str,
        routing: RoutingHeaders | None = None,
        retry_policy: RetryPolicy | None = None,
        request_timeout_s: float = 30.0,
        max_page_bytes: int = 64 * 1024 * 1024,
        gate: RequestGate | None = None,
        tracer: trace.Tracer | None = None,
        tls: ssl.SSLContext | bool = True,
        connections: int = 16,
        on_retry: Callable[[RetryNotice], None] | None = None,
        span_attributes: dict[str, str] | None = None,
    ) -> None:
        self._token = token
        self._encoding = TokenEncodingChoice(token_encoding, ocpi_version)
        self._any_page = False
        self.ocpi_version = ocpi_version
        self._correlation_id = correlation_id
        self._routing = routing
        self._policy = retry_policy or RetryPolicy()
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self._max_bytes = max_page_bytes
        self._gate = gate or RequestGate(None)
        self._tracer = tracer or trace.NoOpTracer()
        self._tls = tls
        self._connections = connections
        self._on_retry = on_retry
        self._span_attributes = span_attributes or {}
        self._rng = random.Random()
        self._session: aiohttp.ClientSession | None = None
        self.retries: Counter[str] = Counter()

    async def __aenter__(self) -> OcpiHttp:
        connector = aiohttp.TCPConnector(limit=self._connections, ssl=self._tls)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, raise_for_status=False
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def token_encoding(self) -> TokenEncoding:
        """The encoding in use now (after any auto switch)."""
        return self._encoding.current

    def set_version(self, ocpi_version: str) -> None:
        """The version is known (after discovery): apply its token rule unless one was learnt."""
        self.ocpi_version = ocpi_version
        self._encoding.use_version(ocpi_version)

    @property
    def total_retries(self) -> int:
        """Retries of every kind so far."""
        return sum(self.retries.values())

    def redact(self, url: URL | str) -> str:
        """A URL as it may appear in logs, spans and events."""
        return redact_url(url, (self._token.get_secret_value(),))

    # -- one request -----------------------------------------------------------------------------

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytes:
        length = response.content_length
        if length is not None and length > self._max_bytes:
            raise PartnerProtocolError(
                f"partner page of {length} bytes exceeds the limit of {self._max_bytes} bytes"
            )
        if length is not None:
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > self._max_bytes:
                raise PartnerProtocolError(
                    f"partner page exceeds the limit of {self._max_bytes} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def _attempt(
        self, url: URL, *, module_request: bool, follow: bool
    ) -> tuple[aiohttp.ClientResponse, bytes, str]:
        assert self._session is not None, "use OcpiHttp as an async context manager"
        headers, request_id = request_headers(
            token=self._token,
            encoding=self._encoding.current,
            ocpi_version=self.ocpi_version,
            correlation_id=self._correlation_id,
            routing=self._routing,
            module_request=module_request,
        )
        await self._gate.wait_turn()
        try:
            async with self._session.get(url, headers=headers, allow_redirects=False) as response:
                body = await self._read_body(response)
        except TimeoutError:
            raise _Attempt(Failure("timeout"), "timeout") from None
        except aiohttp.ClientConnectorCertificateError as error:
            reason = getattr(error.certificate_error, "verify_message", None) or "not trusted"
            raise PartnerTlsError(
                f"TLS certificate of {url.host}:{url.port} failed verification ({reason}); "
                "give the partner's CA with --ca-bundle"
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as error:
            raise _Attempt(
                Failure("connection"), f"connection dropped: {type(error).__name__}"
            ) from None
        except aiohttp.ClientConnectionError as error:
            raise _Attempt(
                Failure("connection"), f"connection failed: {type(error).__name__}"
            ) from None
        except aiohttp.ClientError as error:
            raise _Attempt(Failure("connection"), f"HTTP error: {type(error).__name__}") from None
        status = response.status
        if status in (401, 403):
            if self._encoding.may_switch:
                self._encoding.switch(status)
                raise _Attempt(Failure("http_status", http_status=status), "token encoding", 0.0)
            raise PartnerAuthError(
                f"partner refused the credentials token (HTTP {status}) at {self.redact(url)}; "
                f"sent {self._encoding.current}-encoded"
            )
        if status == 404:
            if follow:
                raise LinkGoneError(f"next link {self.redact(url)} is gone (HTTP 404)")
            raise PartnerAuthError(f"partner endpoint not found (HTTP 404): {self.redact(url)}")
        if 300 <= status <= 399:
            raise PartnerProtocolError(
                f"partner redirected (HTTP {status}) from {self.redact(url)}; "
                "redirects are not followed with credentials"
            )
        if status != 200:
            failure = Failure("http_status", http_status=status)
            retry_after = None
            if status == 429:
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), datetime.now(UTC)
                )
                if retry_after is not None:
                    self._gate.pause(min(retry_after, self._policy.max_retry_after_s))
                else:
                    self._gate.throttled()
            if is_retryable(failure):
                raise _Attempt(failure, f"HTTP {status}", retry_after)
            raise PartnerProtocolError(f"partner answered HTTP {status} at {self.redact(url)}")
        return response, body, request_id

    async def _with_retries(
        self,
        url: URL,
        context: PageContext,
        *,
        module_request: bool,
        follow: bool,
        parse: Callable[[aiohttp.ClientResponse, bytes, str, int, trace.Span], Any],
    ) -> Any:
        attempt = 0
        while True:
            attempt += 1
            with self._tracer.start_as_current_span(
                "ocpi.page" if module_request else "ocpi.discovery",
                kind=trace.SpanKind.CLIENT,
                attributes={
                    **self._span_attributes,
                    "http.request.method": "GET",
                    "url.full": self.redact(url),
                    "ocpi.attempt": attempt,
                    **({"ocpi.window": context.window} if context.window is not None else {}),
                    **({"ocpi.offset": context.offset} if context.offset is not None else {}),
                    **({"ocpi.limit": context.limit} if context.limit is not None else {}),
                },
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    response, body, request_id = await self._attempt(
                        url, module_request=module_request, follow=follow
                    )
                    span.set_attribute("http.response.status_code", response.status)
                    return parse(response, body, request_id, attempt, span)
                except _Attempt as failed:
                    span.set_status(Status(StatusCode.ERROR, failed.reason))
                    span.set_attribute("error.type", failed.failure.kind)
                    if failed.failure.http_status is not None:
                        span.set_attribute("http.response.status_code", failed.failure.http_status)
                    if failed.failure.ocpi_status is not None:
                        span.set_attribute("ocpi.status_code", failed.failure.ocpi_status)
                    allowed = attempts_allowed(self._policy, failed.failure)
                    if not is_retryable(failed.failure) and failed.reason != "token encoding":
                        raise PartnerProtocolError(failed.reason) from None
                    if attempt >= allowed:
                        raise self._exhausted(url, failed, attempt) from None
                    wait = retry_delay(self._policy, attempt, failed.retry_after_s, self._rng)
                    last = failed
                except PullError as error:
                    span.set_status(Status(StatusCode.ERROR, str(error)))
                    span.set_attribute("error.type", error.kind)
                    raise
            self.retries[last.failure.kind] += 1
            if self._on_retry is not None:
                self._on_retry(
                    RetryNotice(last.reason, wait, attempt, self.redact(url), context.window)
                )
            if wait > 0:
                await asyncio.sleep(wait)

    def _exhausted(self, url: URL, failed: _Attempt, attempts: int) -> PullError:
        where = self.redact(url)
        if failed.failure.kind == "bad_body":
            return PartnerProtocolError(f"{failed.reason} at {where} ({attempts} attempts)")
        return PartnerUnavailableError(
            f"partner kept failing at {where}: {failed.reason} ({attempts} attempts)"
        )

    # -- what callers use ------------------------------------------------------------------------

    async def get_envelope(self, url: URL) -> Envelope:
        """GET a versions/details endpoint and return its successful envelope."""

        def parse(
            response: aiohttp.ClientResponse,
            body: bytes,
            request_id: str,
            attempt: int,
            span: trace.Span,
        ) -> Envelope:
            return self._envelope_or_retry(body, list_data=False)

        result: Envelope = await self._with_retries(
            url, PageContext(), module_request=False, follow=False, parse=parse
        )
        return result

    def _envelope_or_retry(self, body: bytes, *, list_data: bool = True) -> Envelope:
        try:
            envelope = parse_envelope(body, list_data=list_data)
        except PartnerProtocolError as error:
            raise _Attempt(Failure("bad_body"), str(error)) from None
        if not envelope.is_success:
            code = envelope.status_code
            if code == 3000 and self._encoding.may_switch and not self._any_page:
                # P11: some 2.2 servers answer a wrongly encoded token with 200 + OCPI 3000.
                self._encoding.switch(f"OCPI {code}")
                raise _Attempt(Failure("http_status", http_status=401), "token encoding", 0.0)
            failure = Failure("ocpi_status", ocpi_status=code)
            message = (envelope.status_message or "").replace("\n", " ")[:200]
            if is_retryable(failure):
                raise _Attempt(failure, f"OCPI status {code} {message}".strip())
            raise PartnerProtocolError(f"partner answered OCPI status {code}: {message}")
        return envelope

    async def fetch_page(
        self, url: URL, *, endpoint: URL, context: PageContext, follow: bool
    ) -> FetchedPage:
        """GET one list page, retrying what is retryable; checks envelope and next link."""

        def parse(
            response: aiohttp.ClientResponse,
            body: bytes,
            request_id: str,
            attempt: int,
            span: trace.Span,
        ) -> FetchedPage:
            envelope = self._envelope_or_retry(body)
            headers = response.headers
            pagination = read_pagination(
                url,
                endpoint,
                total=headers.get("X-Total-Count"),
                limit=headers.get("X-Limit"),
                links=headers.getall("Link", []),
            )
            if pagination.refused_next is not None:
                span.set_attribute("ocpi.next_link_refused", True)
            total, limit = pagination.total, pagination.limit
            self._any_page = True
            span.set_attribute("ocpi.status_code", envelope.status_code)
            span.set_attribute("ocpi.object_count", len(envelope.items))
            if total is not None:
                span.set_attribute("ocpi.total_count", total)
            if limit is not None:
                span.set_attribute("ocpi.x_limit", limit)
            return FetchedPage(
                url=url,
                request_id=request_id,
                envelope=envelope,
                total=total,
                limit=limit,
                next_url=pagination.next_url,
                traceparent=traceparent_of(span),
                refused_next=pagination.refused_next,
            )

        page: FetchedPage = await self._with_retries(
            url, context, module_request=True, follow=follow, parse=parse
        )
        return page
