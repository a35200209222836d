"""`PullClient`: OCPI pagination as an async iterator of pages, without Kafka.

    async with PullClient("https://partner.example/ocpi/versions", token="…",
                          module="tokens") as client:
        async for page in client.pages():
            handle(page.objects)          # page.offset, page.total, page.limit, page.next_url
            page.keys                     # each object's Kafka key (None: it has none)
            page.read                     # the page reader's verdicts, values, last_updated
    print(client.outcome)                 # first total, objects, distinct keys, complete

Discovery, OCPI headers, retries, timeouts, link safety, loop detection and the step-back rule are
those of `ocpi-puller pull`; pages come one at a time, in the order of the partner's list, and
their objects are read by the pull's page reader (`validation`, keys, `last_updated`), so a key
here is the key the pull gives the object. A step back re-reads a few objects (they come again).
At the end the objects' distinct keys are compared with the first `X-Total-Count`; with
`strict=True` (the default) a shortfall raises `IncompletePullError` instead of ending quietly.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from opentelemetry import trace
from pydantic import SecretStr
from yarl import URL

from producer.errors import IncompletePullError
from producer.ocpi.http.client import OcpiHttp
from producer.ocpi.http.discovery import discover
from producer.ocpi.http.retry import RetryPolicy
from producer.ocpi.paging.pages import ListQuery, PageDriver, WindowPage
from producer.ocpi.paging.reader import PageReader, ReadPage
from producer.ocpi.paging.repair import LinkRepair, LinkRepairSetting
from producer.ocpi.planning.verdict import judge_walk
from producer.ocpi.protocol.headers import RoutingHeaders, TokenEncodingSetting
from producer.ocpi.protocol.versions import ModuleEndpoint
from schemas.keys import PartnerIdentity
from schemas.validation import ValidationMode


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a partner's list: its objects (parsed JSON, as sent) and pagination."""

    url: str  # redacted
    offset: int
    objects: list[Any]
    total: int | None  # X-Total-Count
    limit: int | None  # X-Limit
    next_url: str | None  # redacted
    request_id: str
    ocpi_status: int
    read: ReadPage  # the page reader's reading: verdicts, keys, values, last_updated

    @property
    def keys(self) -> list[str | None]:
        """Each object's Kafka key (from its canonical reading); None when it has none."""
        return self.read.keys


@dataclass(frozen=True, slots=True)
class PullOutcome:
    """How the walk over the list ended."""

    pages: int
    objects: int
    distinct: int
    first_total: int | None
    latest_total: int | None
    step_backs: int
    complete: bool


class PullClient:
    """Pages of one partner module, fetched as `ocpi-puller pull` fetches them."""

    def __init__(
        self,
        url: str,
        *,
        token: str | SecretStr,
        module: str | None = None,
        ocpi_version: str | None = None,
        token_encoding: TokenEncodingSetting = "auto",
        routing: RoutingHeaders | None = None,
        partner: PartnerIdentity | None = None,
        limit: int = 1000,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        request_timeout_s: float = 30.0,
        retry_policy: RetryPolicy | None = None,
        tracer: trace.Tracer | None = None,
        strict: bool = True,
        link_repair: LinkRepairSetting = "auto",
        validation: ValidationMode = "lenient",
    ) -> None:
        self._url = URL(url)
        self._module = module
        self._version = ocpi_version
        self._partner = partner
        self._limit = limit
        self._date_from = date_from
        self._date_to = date_to
        self._strict = strict
        self._validation = validation
        self.repair = LinkRepair.from_setting(link_repair)
        self._http = OcpiHttp(
            token=token if isinstance(token, SecretStr) else SecretStr(token),
            ocpi_version=ocpi_version,
            token_encoding=token_encoding,
            correlation_id=str(uuid.uuid4()),
            routing=routing,
            retry_policy=retry_policy,
            request_timeout_s=request_timeout_s,
            tracer=tracer,
            connections=2,
        )
        self.endpoint: ModuleEndpoint | None = None
        self.outcome: PullOutcome | None = None

    async def __aenter__(self) -> PullClient:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.__aexit__(exc_type, exc, tb)

    async def pages(self) -> AsyncIterator[Page]:
        """Every page, in list order, until the last one (the one without a next link)."""
        endpoint = await discover(self._http, self._url, self._module, self._version)
        self.endpoint = endpoint
        reader = PageReader(endpoint.ocpi_version, endpoint.module, self._partner, self._validation)
        query = ListQuery(endpoint, self._date_from, self._date_to, self._limit, overlap_211=False)
        driver = PageDriver(self._http, query, repair=self.repair)
        keys: set[str] = set()
        objects = pages = 0
        async with contextlib.aclosing(driver.pages()) as fetched_pages:
            async for fetched in fetched_pages:
                pages += 1
                objects += len(fetched.items)
                read = reader.read(fetched.items)
                for key, value in zip(read.keys, read.values, strict=True):
                    # Keyless objects still count as received.
                    keys.add(value.decode("utf-8", "replace") if key is None else key)
                yield self._page(fetched, read)
        walk = driver.walk
        verdict = judge_walk(walk, received=len(keys))
        self.outcome = PullOutcome(
            pages=pages,
            objects=objects,
            distinct=len(keys),
            first_total=walk.first_total,
            latest_total=walk.latest_total,
            step_backs=walk.patches,
            complete=verdict.complete,
        )
        if self._strict and not verdict.complete:
            raise IncompletePullError(
                f"the list ended with {len(keys)} distinct objects for a reported total of "
                f"{walk.first_total}"
            )

    def _page(self, fetched: WindowPage, read: ReadPage) -> Page:
        page = fetched.page
        return Page(
            url=self._http.redact(page.url),
            offset=fetched.offset,
            objects=[read.parsed(i) for i in range(len(read))],
            total=page.total,
            limit=page.limit,
            next_url=None if page.next_url is None else self._http.redact(page.next_url),
            request_id=page.request_id,
            ocpi_status=page.envelope.status_code,
            read=read,
        )
