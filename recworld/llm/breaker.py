"""A circuit breaker: stop calling a server that keeps failing, probe it after a cooldown."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Opens after ``failures`` consecutive failed calls; one probe after ``cooldown_s``.

    While open, calls are refused at once (the runtime returns fell-back
    results) so a dead server costs the simulation no timeouts. After the
    cooldown, exactly one call is let through as a probe: success closes the
    breaker, failure re-opens it for another cooldown.

    The runtime keeps one per server (``LLMConfig.base_urls``). Not
    thread-safe by itself: the runtime uses it from its event-loop thread only.
    """

    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._consecutive = 0
        self._state: State = "closed"
        self._opened_at = 0.0
        self._probe_out = False
        self.times_opened = 0

    @property
    def state(self) -> State:
        """``closed``, ``open`` or ``half_open`` (cooldown over, probe allowed or in flight)."""
        if self._state == "open" and self._clock() - self._opened_at >= self.cooldown_s:
            return "half_open"
        return self._state

    @property
    def available(self) -> bool:
        """Whether :meth:`allow` would let a call through now (claims nothing)."""
        state = self.state
        return state == "closed" or (state == "half_open" and not self._probe_out)

    def allow(self) -> bool:
        """Whether a call may go to the server now (claims the probe when half-open)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probe_out:
            self._probe_out = True
            return True
        return False

    def record_success(self) -> None:
        """A call reached the server and got an answer."""
        self._consecutive = 0
        self._state = "closed"
        self._probe_out = False

    def record_failure(self) -> None:
        """A call failed for transport or server reasons (after its retries)."""
        self._consecutive += 1
        if self._probe_out or self._consecutive >= self.failures:
            if self._state != "open" or self._probe_out:
                self.times_opened += 1
            self._state = "open"
            self._opened_at = self._clock()
            self._probe_out = False
