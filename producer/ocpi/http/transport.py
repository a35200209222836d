"""One GET to the partner over aiohttp: same-origin redirects followed, the body size bounded, and
transport failures turned into what the retry policy judges. No OCPI knowledge here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from producer.errors import (
    PartnerProtocolError,
    PartnerTlsError,
    cannot_connect,
    connect_failure,
)
from producer.ocpi.http.redirects import REDIRECT_STATUSES, RedirectMemory, redirect_target
from producer.ocpi.http.retry import Failure


class AttemptFailed(Exception):
    """An attempt failed in a way the retry policy judges."""

    def __init__(self, failure: Failure, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Answer:
    """What the partner answered: status, headers, the whole body, and the URL that answered
    (after same-origin redirects: relative links resolve against it)."""

    status: int
    headers: Any  # aiohttp's CIMultiDictProxy: get() and getall()
    body: bytes
    url: URL
    request_id: str = ""  # our X-Request-ID of the attempt that got this answer
    # Our wall clock when the request went out and when the answer was in (epoch s): the times
    # between which the partner stamped it (see clock.py).
    sent_at: float = 0.0
    received_at: float = 0.0


async def get_once(
    session: aiohttp.ClientSession,
    url: URL,
    headers: dict[str, str],
    *,
    max_bytes: int,
    redirects: RedirectMemory,
) -> Answer:
    """GET `url` (following same-origin redirects, each with the same headers)."""
    current = redirects.apply(url)
    hops = 0
    while True:
        sent_at = time.time()
        try:
            async with session.get(current, headers=headers, allow_redirects=False) as response:
                if response.status in REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    current = redirect_target(current, response.status, location, hops)
                    hops += 1
                    continue
                body = await _read_body(response, max_bytes)
                answer = Answer(
                    response.status,
                    response.headers,
                    body,
                    current,
                    sent_at=sent_at,
                    received_at=time.time(),
                )
        except aiohttp.ConnectionTimeoutError as error:
            raise AttemptFailed(
                Failure("timeout"), cannot_connect(current.host, current.port, error)
            ) from None
        except TimeoutError:
            raise AttemptFailed(
                Failure("timeout"),
                f"no whole answer from {_where(current)} within the request timeout",
            ) from None
        except aiohttp.ClientConnectorCertificateError as error:
            reason = getattr(error.certificate_error, "verify_message", None) or "not trusted"
            raise PartnerTlsError(
                f"TLS certificate of {url.host}:{url.port} failed verification ({reason}); "
                "give the partner's CA with --ca-bundle"
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
            raise AttemptFailed(
                Failure("connection"), f"{_where(current)} closed the connection mid-answer"
            ) from None
        except aiohttp.ClientConnectorError as error:
            raise AttemptFailed(
                Failure("connection"), cannot_connect(current.host, current.port, error)
            ) from None
        except aiohttp.ClientConnectionError as error:
            raise AttemptFailed(
                Failure("connection"),
                f"connection to {_where(current)} lost: {connect_failure(error)}",
            ) from None
        except aiohttp.ClientError:
            raise AttemptFailed(
                Failure("connection"), f"the HTTP exchange with {_where(current)} failed"
            ) from None
        if hops:
            redirects.remember(url, current)
        return answer


def _where(url: URL) -> str:
    return f"{url.host}:{url.port}"


async def _read_body(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    length = response.content_length
    if length is not None and length > max_bytes:
        raise PartnerProtocolError(
            f"partner page of {length} bytes exceeds the limit of {max_bytes} bytes"
        )
    if length is not None:
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > max_bytes:
            raise PartnerProtocolError(f"partner page exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
