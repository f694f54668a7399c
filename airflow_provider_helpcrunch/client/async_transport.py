"""
One HTTP attempt at HelpCrunch from an event loop (the triggerer's), with ``httpx``.

The same promises as :mod:`.transport`: the bearer token as the request's auth, no redirects followed, a body
of bounded size, and one deadline on the whole attempt (a server that trickles bytes cannot hold it past
the deadline). Nothing in it blocks the event loop.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_helpcrunch.client.transport import Answer, BodyReader

if TYPE_CHECKING:
    from collections.abc import Mapping


class AsyncAttemptTimeout(TimeoutError):
    """The attempt ran past its deadline (the server was too slow, or trickled its answer)."""


class TLSFailure(httpx.TransportError):
    """The TLS handshake failed (a certificate, a protocol): not a transient failure."""


def make_client(*, token: str, headers: Mapping[str, str], pool_size: int) -> httpx.AsyncClient:
    """
    Return an ``httpx.AsyncClient`` for HelpCrunch: the bearer token in every request, no redirects.

    ``~/.netrc`` is never read for credentials (httpx reads it only when asked); proxy settings from the
    environment still apply.
    """
    return httpx.AsyncClient(
        headers={**headers, "Authorization": f"Bearer {token}"},
        follow_redirects=False,
        timeout=None,  # the attempt's one deadline is kept by send_once_async
        limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
    )


async def send_once_async(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    timeout: float,
    max_body_bytes: int,
    json: Any = None,
    params: Mapping[str, Any] | None = None,
) -> Answer:
    """
    Send one request and read the whole answer within ``timeout`` seconds of wall time.

    Redirects are not followed (the 3xx is the answer). Raises ``httpx`` errors for transport failures,
    :class:`TLSFailure` for a failed handshake, :class:`AsyncAttemptTimeout` past the deadline and
    :class:`~.transport.ResponseTooLarge` over ``max_body_bytes``.
    """
    try:
        async with asyncio.timeout(timeout):
            async with client.stream(method, url, json=json, params=params) as response:
                body = BodyReader(response.headers, max_body_bytes)
                async for chunk in response.aiter_bytes():
                    body.add(chunk)
                return Answer(response.status_code, response.headers, body.read())
    except TimeoutError:
        raise AsyncAttemptTimeout(f"no whole answer within {timeout:g} s") from None
    except httpx.ConnectError as err:
        if _from_tls(err):
            raise TLSFailure(str(err)) from err
        raise


def _from_tls(err: BaseException) -> bool:
    """Whether a connection failure came from the TLS handshake (``ssl.SSLError`` anywhere in its chain)."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
