"""Last-known-good API keys, for authenticating while the database is unreachable.

Normally every request looks its key up in MongoDB, so a revoked key stops working at once.
When that lookup cannot be made (database down or past its deadline), a key that was verified
within ``max_age_s`` is still accepted, so storefront traffic can keep being served from
in-memory fallbacks during an outage. The price is bounded: a key revoked during an outage
keeps working until the outage ends or ``max_age_s`` passes, whichever is first. Only hashes
are held, never plaintext keys.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from shopfront.platform.keys import ApiKey, hash_key


class KeyCache:
    def __init__(
        self,
        max_age_s: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[ApiKey, float]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, plaintext: str, key: ApiKey) -> None:
        """Record that ``plaintext`` was just verified as ``key``."""
        if self.max_age_s <= 0:
            return
        digest = hash_key(plaintext)
        with self._lock:
            self._entries[digest] = (key, self._clock())
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, plaintext: str) -> None:
        """Drop ``plaintext`` (the database said it is unknown or revoked)."""
        with self._lock:
            self._entries.pop(hash_key(plaintext), None)

    def recall(self, plaintext: str) -> ApiKey | None:
        """The key verified for ``plaintext`` within ``max_age_s``, else None."""
        digest = hash_key(plaintext)
        with self._lock:
            found = self._entries.get(digest)
        if found is None:
            return None
        key, seen = found
        if self._clock() - seen > self.max_age_s:
            return None
        return key
