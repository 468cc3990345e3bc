"""Endpoint pools: the servers one runtime spreads its calls over (``LLMConfig.base_urls``).

Each endpoint is a transport (its own connections), a circuit breaker and
counters. :meth:`EndpointPool.pick` chooses where the next attempt goes:

1. only endpoints whose breaker lets a call through (closed, or half-open
   with its one probe not yet sent);
2. a half-open endpoint first, so a recovered server gets its probe as soon
   as its cooldown ends, even under light load;
3. then the fewest requests in flight ("least outstanding requests"), which
   sends more work to faster servers and less to a slow or queueing one;
4. ties go to the endpoint listed first: deterministic, and it keeps a
   light load on few servers (warm prefix caches).

The runtime decides what a failed attempt does next (move on or retry,
see ``LLMRuntime``); the pool only picks and counts. Everything runs on the
runtime's event-loop thread, so the counters need no lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from recworld.llm.breaker import CircuitBreaker, State
from recworld.llm.transport import Attempt, Reply, Transport, TransportError

__all__ = ["Endpoint", "EndpointPool", "EndpointStats", "endpoint_label"]


def endpoint_label(url: str | None) -> str:
    """How an endpoint is recorded: its URL without credentials or query.

    ``None`` (the ``openai`` client's default server) is labelled by that default.
    """
    if url is None:
        return "https://api.openai.com/v1"
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True)
class EndpointStats:
    """Counters of one endpoint, from this runtime's point of view.

    Attributes:
        endpoint: The endpoint's label (its URL without credentials).
        state: Its breaker: ``closed``, ``open`` or ``half_open``.
        in_flight: Requests sent and not yet answered or failed.
        requests: HTTP requests sent (attempts: first tries, failovers,
            retries and repair re-asks alike).
        answered: Requests that got a usable HTTP answer.
        failed: Requests that failed (connection, timeout, HTTP error, bad body).
        times_opened: How often its breaker opened.
    """

    endpoint: str
    state: State
    in_flight: int
    requests: int
    answered: int
    failed: int
    times_opened: int


class Endpoint:
    """One server of a pool: transport, breaker and counters."""

    __slots__ = ("index", "label", "transport", "breaker", "in_flight", "requests", "answered", "failed")

    def __init__(self, index: int, label: str, transport: Transport, breaker: CircuitBreaker) -> None:
        self.index = index
        self.label = label
        self.transport = transport
        self.breaker = breaker
        self.in_flight = 0
        self.requests = 0
        self.answered = 0
        self.failed = 0

    def __repr__(self) -> str:
        return f"Endpoint({self.index}, {self.label!r}, {self.breaker.state}, in_flight={self.in_flight})"


class EndpointPool:
    """Endpoints chosen least-outstanding-first, each behind its own breaker.

    Args:
        endpoints: The endpoints, in configuration order (the tie-break order).
    """

    def __init__(self, endpoints: Sequence[Endpoint]) -> None:
        if not endpoints:
            raise ValueError("an endpoint pool needs at least one endpoint")
        self.endpoints = list(endpoints)

    def __len__(self) -> int:
        return len(self.endpoints)

    def _best(self, exclude: Collection[int]) -> Endpoint | None:
        best: Endpoint | None = None
        best_key: tuple[int, int, int] | None = None
        for ep in self.endpoints:
            if ep.index in exclude or not ep.breaker.available:
                continue
            key = (0 if ep.breaker.state == "half_open" else 1, ep.in_flight, ep.index)
            if best_key is None or key < best_key:
                best, best_key = ep, key
        return best

    def pick(self, exclude: Collection[int] = ()) -> tuple[Endpoint, bool] | None:
        """Claim the endpoint for the next attempt; None when every candidate's breaker refuses.

        Args:
            exclude: Indexes of endpoints not to use (those this call already failed on).

        Returns:
            The endpoint and whether this attempt is its breaker's half-open probe.
        """
        ep = self._best(exclude)
        if ep is None:
            return None
        probe = ep.breaker.state == "half_open"
        ep.breaker.allow()  # claims the probe when half-open; always True here
        return ep, probe

    def any_available(self, exclude: Collection[int] = ()) -> bool:
        """Whether :meth:`pick` would find an endpoint (claims nothing)."""
        return self._best(exclude) is not None

    async def send(self, ep: Endpoint, attempt: Attempt, timeout_s: float) -> Reply:
        """One attempt at ``ep``, counted; the breaker is left to the caller.

        Raises:
            TransportError: The attempt failed (a timeout included).
        """
        ep.in_flight += 1
        ep.requests += 1
        try:
            # A guard over the whole attempt (httpx's timeout is per read);
            # asyncio.timeout costs no extra task, unlike wait_for.
            async with asyncio.timeout(timeout_s + 1.0):
                reply = await ep.transport.send(attempt, timeout_s)
        except TimeoutError:
            ep.failed += 1
            raise TransportError("timeout", True) from None
        except TransportError:
            ep.failed += 1
            raise
        finally:
            ep.in_flight -= 1
        ep.answered += 1
        return reply

    def stats(self) -> list[EndpointStats]:
        """Counters of every endpoint, in configuration order."""
        return [EndpointStats(ep.label, ep.breaker.state, ep.in_flight, ep.requests, ep.answered, ep.failed, ep.breaker.times_opened) for ep in self.endpoints]

    async def aclose(self) -> None:
        """Close every endpoint's connections (one failing close does not stop the others)."""
        for ep in self.endpoints:
            try:
                await ep.transport.aclose()
            except Exception:  # noqa: BLE001 - closing must not fail on a dead connection
                pass
