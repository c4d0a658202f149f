"""Limits on what one caller may ask of the API: write rate and page size.

Writes are counted per bearer token in a token bucket: a token holds at most
``burst`` writes and regains ``rate`` writes per second. The buckets live in
the memory of one process, so with several WSGI workers each worker keeps its
own and a token may write up to that many times the configured rate.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import g, request

from api.errors import ProblemError
from soh_es.errors import ValidationError

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class RateLimit:
    """A sustained rate of writes per second and the burst allowed at once."""

    rate: float
    burst: int
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class _Bucket:
    tokens: float
    updated: float


class WriteLimiter:
    """Token buckets, one per bearer token, shared by the threads of a process."""

    def __init__(
        self, limit: RateLimit, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Takes one write from ``key``'s bucket.

        Returns 0 when the write may go ahead, otherwise the seconds until
        the bucket holds a write again (nothing is taken then).
        """
        now = self.clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(float(self.limit.burst), now)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(
                float(self.limit.burst), bucket.tokens + elapsed * self.limit.rate
            )
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.limit.rate


def limit_writes(limiter: WriteLimiter | None) -> None:
    """Refuses a write with 429 when its token has used up its bucket.

    Runs after authentication, so only requests with a valid token are
    counted, and before the body is read, so a refused write costs nothing.
    """
    token_key = g.get("soh_token_key")
    if limiter is None or token_key is None or request.method not in WRITE_METHODS:
        return
    wait = limiter.take(token_key)
    if wait <= 0:
        return
    seconds = max(1, math.ceil(wait))
    logger.info("Refused a write of %s: over %s", g.soh_user.name, limiter.limit)
    raise ProblemError(
        429,
        "rate-limited",
        f"This token has used its writes ({limiter.limit}); retry in {seconds} s.",
        headers={"Retry-After": str(seconds)},
    )


def check_page_size(max_page_size: int) -> None:
    """Refuses a ``limit`` query parameter above the configured page size.

    Applies to every endpoint that pages with ``limit``; values that are
    not whole numbers are left to the endpoint's own validation.
    """
    raw = request.args.get("limit")
    if raw is None:
        return
    try:
        value = int(raw)
    except ValueError:
        return
    if value > max_page_size:
        raise ValidationError(
            "limit",
            f"limit {value!r} is above the largest page, {max_page_size}; ask for "
            f"1 to {max_page_size} items and page on with offset.",
        )
