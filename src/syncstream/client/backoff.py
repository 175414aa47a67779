"""How long to wait before reconnecting: soon, jittered, exponential when failures repeat, and bounded.

A dropped stream is most often a blip (a proxy recycling connections, a server restarting behind a load
balancer), so the first retry comes within half a second. When a server restarts, every client it served
reconnects at once: waiting a random part of the delay spreads them out (no thundering herd), and a server
that keeps failing is backed off from exponentially. While the server cannot be reached at all (a restart,
a deploy) the waits stay under a second for the first :attr:`Backoff.fast_window` seconds: a refused
connection costs next to nothing, and a client that had backed off to 4 s would stay away that long after
the server is back. A server that says it is shutting down (``event: close``) is expected back soon, or
another process is already there: the client reconnects at once. The same policy as the browser client's.

The server's ``retry:`` hint (5 s by default) is meant for a browser's ``EventSource``, which cannot do
better than a fixed delay; this client ignores it unless told to (``honour_server_retry=True``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """The reconnection policy.

    The n-th consecutive failed attempt (n = 1, 2, …) waits a random time in
    ``[(1 - jitter) * c, c]`` where ``c = min(maximum, base * multiplier ** (n - 1))`` and ``base`` is
    ``initial`` (or the server's ``retry:`` hint, with ``honour_server_retry``). With the defaults that
    is 0.1 to 0.5 s, then 0.2 to 1 s, 0.4 to 2 s, … up to 2 to 10 s. A ``Retry-After`` header (429, 503)
    raises the wait to what the server asked, up to ``max_retry_after``. A connection that delivered
    something resets the count, so a long-lived stream that drops reconnects within ``initial``.

    Attributes:
        initial: Base delay in seconds.
        maximum: Upper bound of a backoff wait, in seconds.
        multiplier: Growth factor per consecutive failure.
        jitter: Fraction of the delay that is randomised (0: none, 1: "full jitter").
        honour_server_retry: Use the server's ``retry:`` hint as the base instead of ``initial``.
        fast_maximum: Upper bound of a wait while the server is unreachable (refused, dropped, ended) and
            the outage is younger than ``fast_window`` seconds. Not for 429/5xx: a busy server is backed
            off from at once.
        fast_window: See ``fast_maximum``.
        max_retry_after: Upper bound of a wait imposed by ``Retry-After`` (a hostile or broken server
            cannot park the client for a day).
        max_attempts: Give up (:class:`~syncstream.client.StreamUnavailable`) after this many consecutive
            failures; ``None`` retries for ever, like a browser's ``EventSource``.
    """

    initial: float = 0.5
    maximum: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.8
    honour_server_retry: bool = False
    fast_maximum: float = 1.0
    fast_window: float = 15.0
    max_retry_after: float = 300.0
    max_attempts: int | None = None
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0 or self.multiplier < 1 or not 0 <= self.jitter <= 1:
            raise ValueError("Backoff needs initial, maximum >= 0, multiplier >= 1 and 0 <= jitter <= 1")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError("Backoff needs max_attempts >= 0 (or None: retry for ever)")

    def delay(
        self,
        failures: int,
        *,
        server_retry: float | None = None,
        retry_after: float | None = None,
        outage: float | None = None,
    ) -> float:
        """Seconds to wait after ``failures`` consecutive failures (``failures >= 1``); ``outage`` is how long
        the server has been unreachable (None when it answered, busy)."""
        base = server_retry if server_retry is not None and self.honour_server_retry else self.initial
        exponent = max(0, failures - 1)
        # Bound the exponent so a very long outage cannot overflow the float.
        ceiling = min(self.maximum, base * self.multiplier ** min(exponent, 64))
        if outage is not None and outage < self.fast_window:
            ceiling = min(ceiling, max(self.fast_maximum, base))
        wait = ceiling * (1 - self.jitter * self.rng.random())
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait
