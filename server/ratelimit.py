"""Token-bucket rate limits, kept in the memory of one relay process.

Each key (a device, a client address) has a bucket of ``burst`` tokens that refills at
``rate`` tokens per second; a request takes one token. Buckets are per process: behind a
load balancer with N relay processes a client may get up to N times the rate, which
docs/deploy.md points out (put a limit on the load balancer too).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from server.errors import RateLimitedError, RelayErrorCode


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Buckets for many keys; the least recently used are forgotten past ``max_keys``."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        code: RelayErrorCode,
        what: str,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.code = code
        self.what = what
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def take(self, key: Hashable, cost: float = 1.0) -> None:
        """Take ``cost`` tokens from ``key``'s bucket.

        Raises:
            RateLimitedError: the bucket is empty; ``retry_after`` says when it is not.
        """
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated=now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens < cost:
            wait = math.ceil((cost - bucket.tokens) / self.rate)
            raise RateLimitedError(
                self.code, f"too many requests {self.what}; retry later", retry_after=wait
            )
        bucket.tokens -= cost
