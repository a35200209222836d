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
from dataclasses import replace
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
    PartnerNotFoundError,
    PartnerProtocolError,
    PartnerUnavailableError,
    PullError,
)
from producer.observe.redaction import redact_url
from producer.observe.telemetry import traceparent_of
from producer.ocpi.http.clock import PartnerClock
from producer.ocpi.http.limiter import AdaptiveLimiter, Slot
from producer.ocpi.http.ratelimit import RequestGate
from producer.ocpi.http.redirects import RedirectMemory
from producer.ocpi.http.retry import (
    PARTNER_REQUESTS,
    Failure,
    RetryPolicy,
    attempts_allowed,
    is_retryable,
    parse_retry_after,
)
from producer.ocpi.http.transport import Answer, AttemptFailed, get_once
from producer.ocpi.protocol.envelope import Envelope, parse_details_envelope, parse_list_envelope
from producer.ocpi.protocol.headers import (
    RoutingHeaders,
    TokenEncoding,
    TokenEncodingChoice,
    TokenEncodingSetting,
    request_headers,
)
from producer.ocpi.protocol.responses import FetchedPage, PageContext, RetryNotice, read_pagination

log = logging.getLogger("ocpi_puller")


# A followed next link answering these is unusable as given (a hub's one-shot link already used,
# a link to the wrong path, a link with filters the partner itself refuses): repairable.
BROKEN_LINK_STATUSES = frozenset({400, 404, 422})


class LinkGoneError(PartnerProtocolError):
    """A followed next link answered 400, 404 or 422: it cannot be used as given."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


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
        limiter: AdaptiveLimiter | None = None,
    ) -> None:
        self._token = token
        self._encoding = TokenEncodingChoice(token_encoding, ocpi_version)
        self._any_page = False
        self.ocpi_version = ocpi_version
        self._correlation_id = correlation_id
        self._routing = routing
        self._policy = retry_policy or PARTNER_REQUESTS
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
        # Requests in flight to this partner (shared by its modules); by default unbounded.
        self._limiter = limiter or AdaptiveLimiter.fixed(connections)
        self._redirects = RedirectMemory()
        self.retries: Counter[str] = Counter()
        self.on_answer: Callable[[Answer], None] = lambda _: None  # plan hears rate limits
        self.clock = PartnerClock()  # what the partner's answers say about its clock

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

    async def _attempt(
        self, url: URL, *, module_request: bool, follow: bool, slot: Slot | None = None
    ) -> Answer:
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
        if slot is not None:
            slot.sent()  # latency counts from here, not from the wait for the gate
        answer = await get_once(
            self._session, url, headers, max_bytes=self._max_bytes, redirects=self._redirects
        )
        self.on_answer(answer)  # every answer, before it is judged
        if slot is not None:
            slot.answered()  # the partner's latency ends with its body; parsing is ours
        self._judge_status(answer, follow)
        return replace(answer, request_id=request_id)

    def _judge_status(self, answer: Answer, follow: bool) -> None:
        """Raise what a non-200 status means: auth, a broken link, a retry, or a refusal."""
        status, where = answer.status, self.redact(answer.url)
        if status == 200:
            return
        if status in (401, 403):
            if self._encoding.may_switch:
                self._encoding.switch(status)
                raise AttemptFailed(
                    Failure("http_status", http_status=status), "token encoding", 0.0
                )
            raise PartnerAuthError(
                f"partner refused the credentials token (HTTP {status}) at {where}; "
                f"sent {self._encoding.current}-encoded"
            )
        if follow and status in BROKEN_LINK_STATUSES:
            raise LinkGoneError(f"next link {where} answered HTTP {status}", status)
        if status == 404:
            raise PartnerNotFoundError(f"partner endpoint not found (HTTP 404): {where}")
        failure = Failure("http_status", http_status=status)
        retry_after = None
        if status == 429:
            # The concurrency controller backs off (report_load); the gate obeys Retry-After.
            retry_after = parse_retry_after(answer.headers.get("Retry-After"), datetime.now(UTC))
            if retry_after is not None:
                self._gate.pause(min(retry_after, self._policy.max_retry_after_s))
        if is_retryable(failure):
            raise AttemptFailed(failure, f"HTTP {status}", retry_after)
        raise PartnerProtocolError(f"partner answered HTTP {status} at {where}")

    async def _with_retries(
        self,
        url: URL,
        context: PageContext,
        *,
        module_request: bool,
        follow: bool,
        parse: Callable[[Answer, trace.Span], Any],
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
                    return await self._attempt_in_slot(
                        url, context, module_request, follow, parse, span
                    )
                except AttemptFailed as failed:
                    span.set_status(Status(StatusCode.ERROR, failed.reason))
                    span.set_attribute("error.type", failed.failure.kind)
                    if failed.failure.http_status is not None:
                        span.set_attribute("http.response.status_code", failed.failure.http_status)
                    if failed.failure.ocpi_status is not None:
                        span.set_attribute("ocpi.status_code", failed.failure.ocpi_status)
                    if not is_retryable(failed.failure) and failed.reason != "token encoding":
                        raise PartnerProtocolError(failed.reason) from None
                    wait = self._policy.next_wait(
                        attempt,
                        self._rng,
                        retry_after_s=failed.retry_after_s,
                        max_attempts=attempts_allowed(self._policy, failed.failure),
                    )
                    if wait is None:
                        raise self._exhausted(url, failed, attempt) from None
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

    async def _attempt_in_slot(
        self,
        url: URL,
        context: PageContext,
        module_request: bool,
        follow: bool,
        parse: Callable[[Answer, trace.Span], Any],
        span: trace.Span,
    ) -> Any:
        """One attempt holding a permit of the partner's limiter, whose controller hears how it
        went (a load signal: latency, 429, 503, a timeout, a reset; nothing else)."""
        endpoint = "probe" if context.limit == 1 else "page" if module_request else "discovery"
        async with self._limiter.slot(endpoint=endpoint) as slot:
            try:
                answer = await self._attempt(url, module_request=module_request, follow=follow,
                                             slot=slot)  # fmt: skip
            except AttemptFailed as failed:
                report_load(slot, failed)
                raise
            span.set_attribute("http.response.status_code", answer.status)
            result = parse(answer, span)
            slot.finish("ok", full_page=is_full_page(result, context))
            return result

    def _exhausted(self, url: URL, failed: AttemptFailed, attempts: int) -> PullError:
        where = self.redact(url)
        if failed.failure.kind == "bad_body":
            return PartnerProtocolError(f"{failed.reason} at {where} ({attempts} attempts)")
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        return PartnerUnavailableError(
            f"partner kept failing at {where}: {failed.reason} ({tries})"
        )

    # -- what callers use ------------------------------------------------------------------------

    async def get_envelope(self, url: URL) -> Envelope:
        """GET a versions/details endpoint and return its successful envelope."""

        def parse(answer: Answer, span: trace.Span) -> Envelope:
            return self._envelope_or_retry(answer, list_data=False)

        result: Envelope = await self._with_retries(
            url, PageContext(), module_request=False, follow=False, parse=parse
        )
        return result

    def _envelope_or_retry(self, answer: Answer, *, list_data: bool = True) -> Envelope:
        try:
            # A list page: its objects as JSON text, for the page reader.
            parse = parse_list_envelope if list_data else parse_details_envelope
            envelope = parse(answer.body)
        except PartnerProtocolError as error:
            raise AttemptFailed(Failure("bad_body"), str(error)) from None
        self.clock.heard_answer(
            envelope.timestamp, answer.headers.get("Date"), answer.sent_at, answer.received_at
        )
        if not envelope.is_success:
            code = envelope.status_code
            if code == 3000 and self._encoding.may_switch and not self._any_page:
                # Some 2.2 servers answer a wrongly encoded token with 200 + OCPI 3000.
                self._encoding.switch(f"OCPI {code}")
                raise AttemptFailed(Failure("http_status", http_status=401), "token encoding", 0.0)
            failure = Failure("ocpi_status", ocpi_status=code)
            message = (envelope.status_message or "").replace("\n", " ")[:200]
            if is_retryable(failure):
                raise AttemptFailed(failure, f"OCPI status {code} {message}".strip())
            raise PartnerProtocolError(f"partner answered OCPI status {code}: {message}")
        return envelope

    async def fetch_page(
        self, url: URL, *, endpoint: URL, context: PageContext, follow: bool
    ) -> FetchedPage:
        """GET one list page, retrying what is retryable; checks envelope and next link."""

        def parse(answer: Answer, span: trace.Span) -> FetchedPage:
            envelope = self._envelope_or_retry(answer)
            headers = answer.headers
            pagination = read_pagination(
                answer.url,
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
                url=answer.url,
                request_id=answer.request_id,
                envelope=envelope,
                total=total,
                limit=limit,
                next_url=pagination.next_url,
                traceparent=traceparent_of(span),
                refused_next=pagination.refused_next,
                link_without_rel=pagination.without_rel,
                refused_link=pagination.refused_target,
            )

        page: FetchedPage = await self._with_retries(
            url, context, module_request=True, follow=follow, parse=parse
        )
        return page


def is_full_page(result: Any, context: PageContext) -> bool:
    """Whether an answer was a full page (the controller's latency samples are full pages)."""
    if not isinstance(result, FetchedPage):
        return False
    limit = result.limit or context.limit
    return bool(limit) and len(result.envelope.items) >= (limit or 0)


def report_load(slot: Slot, failed: AttemptFailed) -> None:
    """Tell the controller about a failed attempt when the failure says something about load."""
    failure = failed.failure
    if failure.kind == "timeout":
        slot.finish("timeout")
    elif failure.kind == "connection":
        slot.finish("reset")
    elif failure.http_status == 429:
        slot.finish("throttled", retry_after_s=failed.retry_after_s)
    elif failure.http_status is not None and 500 <= failure.http_status <= 599:
        slot.finish("unavailable")
    # Anything else (a bad body, an OCPI error) is the partner's answer, not its load.
