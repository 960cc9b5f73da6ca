"""Token-bucket rate limits per API key, per client address and per shopper, in memory, per
instance.

A bucket holds up to ``burst`` tokens and refills at ``rate_per_s``. An operation takes tokens
in proportion to its estimated cost (`tokens_for`: one per ``SHOPFRONT_RATE_LIMIT_COST_PER_TOKEN``,
at least one), so a batch of operations each aliasing many storefronts pays for every one.
An empty bucket refuses with `RateLimited`, which says how long until enough tokens are back
(the HTTP layer sends it as ``Retry-After`` with status 429).

Four kinds of buckets, each with its own budget (settings ``SHOPFRONT_RATE_LIMIT_*``):
``address`` (one token per operation checked first, before the key is even looked up, so
floods of made-up keys never reach the database; the rest of the cost once the document is
measured), ``storefront`` (one bucket per key *and client address*: the storefront key is
public, so one address spending the key's budget must not starve every other shopper of the
shop), ``merchant`` (one bucket per key) and ``shopper`` (per storefront key and shopper or
session id named in the operation). Addresses are bucketed by `client_address.bucket_key`
(IPv6 by /64). Buckets live in a bounded LRU table: a client that has been idle long enough
to be evicted would have a full bucket anyway.

Several instances each keep their own buckets; see the README's operations section.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shopfront.platform.client_address import bucket_key
from shopfront.platform.config import Settings
from shopfront.platform.keys import Role


@dataclass(frozen=True)
class Budget:
    """``rate_per_s`` tokens per second up to ``burst``; a rate of 0 means unlimited."""

    rate_per_s: float
    burst: int

    @property
    def unlimited(self) -> bool:
        return self.rate_per_s <= 0


class RateLimited(Exception):
    """A bucket is empty; retry after ``retry_after_s`` seconds."""

    def __init__(self, bucket: str, retry_after_s: float) -> None:
        self.bucket = bucket
        self.retry_after_s = retry_after_s
        super().__init__(
            f"rate limit exceeded for this {_describe(bucket)}; "
            f"retry after {self.retry_after_header} s"
        )

    @property
    def retry_after_header(self) -> int:
        """Whole seconds for the Retry-After header (at least 1)."""
        return max(1, math.ceil(self.retry_after_s))


def _describe(bucket: str) -> str:
    if bucket in ("address", "shopper"):
        return "client address" if bucket == "address" else "shopper"
    return f"{bucket} key"


def tokens_for(cost: int, cost_per_token: int) -> int:
    """Tokens an operation of estimated ``cost`` takes: one per whole ``cost_per_token``,
    at least one."""
    return max(1, cost // max(1, cost_per_token))


class TokenBuckets:
    """One budget, many buckets keyed by string. Thread-safe; O(1) per take."""

    def __init__(
        self,
        budget: Budget,
        *,
        max_buckets: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.max_buckets = max_buckets
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, cost: int = 1) -> float:
        """Take ``cost`` tokens from ``key``'s bucket: 0.0 when granted, else the seconds until
        the bucket holds ``cost`` tokens (nothing is taken then)."""
        b = self.budget
        if b.unlimited:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(b.burst), now))
            tokens = min(float(b.burst), tokens + (now - last) * b.rate_per_s)
            # A batch bigger than the burst can never fit; it is granted once the bucket is
            # full, and leaves it in debt (negative) so the rate still holds on average.
            need = min(float(cost), float(b.burst))
            if tokens >= need:
                self._buckets[key] = (tokens - cost, now)
                self._buckets.move_to_end(key)
                granted = True
            else:
                self._buckets[key] = (tokens, now)
                self._buckets.move_to_end(key)
                granted = False
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        if granted:
            return 0.0
        return (need - tokens) / b.rate_per_s

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimiter:
    """The service's four kinds of buckets, built from settings."""

    def __init__(
        self,
        *,
        address: Budget,
        storefront: Budget,
        merchant: Budget,
        shopper: Budget = Budget(0, 1),
        cost_per_token: int = 100,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self.cost_per_token = cost_per_token
        self.address = TokenBuckets(address, clock=clock)
        self.keys = {
            Role.STOREFRONT: TokenBuckets(storefront, clock=clock),
            Role.MERCHANT: TokenBuckets(merchant, clock=clock),
        }
        self.shoppers = TokenBuckets(shopper, clock=clock)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(
            enabled=settings.rate_limit_enabled,
            address=Budget(settings.rate_limit_address_per_s, settings.rate_limit_address_burst),
            storefront=Budget(
                settings.rate_limit_storefront_per_s, settings.rate_limit_storefront_burst
            ),
            merchant=Budget(settings.rate_limit_merchant_per_s, settings.rate_limit_merchant_burst),
            shopper=Budget(settings.rate_limit_shopper_per_s, settings.rate_limit_shopper_burst),
            cost_per_token=settings.rate_limit_cost_per_token,
        )

    def tokens(self, cost: int) -> int:
        return tokens_for(cost, self.cost_per_token)

    def check_address(self, address: str | None, cost: int = 1) -> None:
        """Raise `RateLimited` when ``address`` is over its budget (unknown address: no-op)."""
        if not self.enabled or not address or cost <= 0:
            return
        wait = self.address.take(bucket_key(address), cost)
        if wait:
            raise RateLimited("address", wait)

    def check_key(
        self, key_id: str, role: Role, cost: int = 1, *, address: str | None = None
    ) -> None:
        """Raise `RateLimited` when the key ``key_id`` (of ``role``) is over its budget; a
        storefront key has one budget per client ``address``."""
        if not self.enabled:
            return
        bucket = key_id
        if role is Role.STOREFRONT and address:
            bucket = f"{key_id}|{bucket_key(address)}"
        wait = self.keys[role].take(bucket, cost)
        if wait:
            raise RateLimited(role.value, wait)

    def check_shoppers(self, key_id: str, shoppers: Iterable[str], cost: int = 1) -> None:
        """Raise `RateLimited` when any of ``shoppers`` (shopper or session ids named by one
        operation of the storefront key ``key_id``) is over the per-shopper budget."""
        if not self.enabled:
            return
        for shopper in shoppers:
            wait = self.shoppers.take(f"{key_id}|{shopper}", cost)
            if wait:
                raise RateLimited("shopper", wait)
