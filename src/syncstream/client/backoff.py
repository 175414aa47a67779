"""How long to wait before reconnecting: exponential, jittered, and bounded.

When a server restarts, every client it served reconnects at once. Waiting a random part of a growing
delay spreads those reconnections out (no thundering herd) and backs off from a server that keeps
failing, while the server's ``retry:`` hint sets the pace it asked for.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """The reconnection policy.

    The n-th consecutive failed attempt (n = 1, 2, …) waits a random time in
    ``[(1 - jitter) * c, c]`` where ``c = min(maximum, base * multiplier ** (n - 1))``, and ``base`` is the
    server's ``retry:`` hint once received (``initial`` before that, or when ``honour_server_retry`` is
    off). A ``Retry-After`` header (429, 503) raises the wait to what the server asked, but ``maximum``
    bounds every wait. A connection that delivered something resets the count, so a long-lived stream that
    drops reconnects after about one ``base``.

    Attributes:
        initial: Base delay in seconds until the server sent ``retry:``.
        maximum: Upper bound of any single wait, in seconds.
        multiplier: Growth factor per consecutive failure.
        jitter: Fraction of the delay that is randomised (0: none, 1: "full jitter").
        honour_server_retry: Use the server's ``retry:`` as the base.
        max_attempts: Give up (:class:`~syncstream.client.StreamUnavailable`) after this many consecutive
            failures; ``None`` retries for ever, like a browser's ``EventSource``.
    """

    initial: float = 1.0
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    honour_server_retry: bool = True
    max_attempts: int | None = None
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0 or self.multiplier < 1 or not 0 <= self.jitter <= 1:
            raise ValueError("Backoff needs initial, maximum >= 0, multiplier >= 1 and 0 <= jitter <= 1")

    def delay(
        self, failures: int, *, server_retry: float | None = None, retry_after: float | None = None
    ) -> float:
        """Seconds to wait after ``failures`` consecutive failures (``failures >= 1``)."""
        base = server_retry if server_retry is not None and self.honour_server_retry else self.initial
        exponent = max(0, failures - 1)
        # Bound the exponent so a very long outage cannot overflow the float.
        ceiling = min(self.maximum, base * self.multiplier ** min(exponent, 64))
        wait = ceiling * (1 - self.jitter * self.rng.random())
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.maximum)
