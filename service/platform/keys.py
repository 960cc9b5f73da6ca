"""API keys: two roles, stored only as SHA-256 hashes.

Keys are 256-bit random tokens, so a fast hash is enough (there is nothing to brute-force);
the plaintext is shown once at creation and never stored. The role prefix in the key
(``sf_storefront_`` / ``sf_merchant_``) lets an operator tell a leaked key's power at a glance.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shopfront.platform.store import DuplicateKeyError, ReturnDocument, Store
from shopfront.platform.watched import WatchedCollection


class Role(enum.StrEnum):
    STOREFRONT = "storefront"
    MERCHANT = "merchant"

    def allows(self, needed: Role) -> bool:
        """A merchant key may do what a storefront key may; not the other way round."""
        return self is Role.MERCHANT or needed is Role.STOREFRONT


class KeyError_(ValueError):
    """A key operation was asked for something impossible (unknown role, empty name)."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ApiKey:
        return cls(
            id=doc["_id"],
            name=doc["name"],
            role=Role(doc["role"]),
            created_at=doc["created_at"],
            revoked_at=doc.get("revoked_at"),
        )


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


async def create_key(store: Store, role: Role | str, name: str) -> tuple[ApiKey, str]:
    """Create a key; returns the record and the plaintext, which is never retrievable again."""
    try:
        role = Role(role)
    except ValueError:
        raise KeyError_(f"unknown role {role!r}: use storefront or merchant") from None
    name = name.strip()
    if not name:
        raise KeyError_("a key needs a name")
    while True:
        plaintext = f"sf_{role.value}_{secrets.token_urlsafe(32)}"
        doc = {
            "_id": secrets.token_hex(8),
            "name": name,
            "role": role.value,
            "key_hash": hash_key(plaintext),
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
        try:
            await store.api_keys.insert_one(doc)
        except DuplicateKeyError:  # astronomically unlikely; draw again
            continue
        return ApiKey.from_doc(doc), plaintext


async def authenticate(
    store: Store, plaintext: str, known: WatchedCollection | None = None
) -> ApiKey | None:
    """The active key for ``plaintext``, or None when it is unknown or revoked.

    With ``known`` (the keys held in memory, indexed by ``key_hash``, current on every
    instance) a known key costs no round trip; an unknown one is looked up (a key created a
    moment ago, before its change arrived)."""
    digest = hash_key(plaintext)
    doc = known.find_by(digest) if known is not None else None
    if doc is None:
        doc = await store.api_keys.find_one({"key_hash": digest})
        if doc is not None and known is not None:
            known.put(doc)
    if doc is None or doc.get("revoked_at") is not None:
        return None
    return ApiKey.from_doc(doc)


async def list_keys(store: Store) -> list[ApiKey]:
    docs = await store.api_keys.find({}, {"key_hash": 0}).sort("created_at", 1).to_list(None)
    return [ApiKey.from_doc(d) for d in docs]


async def revoke_key(store: Store, key_id_or_name: str) -> list[ApiKey]:
    """Revoke the key with this id, or every active key with this name. Idempotent."""
    now = datetime.now(UTC)
    doc = await store.api_keys.find_one_and_update(
        {"_id": key_id_or_name},
        {"$set": {"revoked_at": now}},
        return_document=ReturnDocument.AFTER,
    )
    if doc is not None:
        return [ApiKey.from_doc(doc)]
    docs = await store.api_keys.find({"name": key_id_or_name, "revoked_at": None}).to_list(None)
    if docs:
        await store.api_keys.update_many(
            {"_id": {"$in": [d["_id"] for d in docs]}}, {"$set": {"revoked_at": now}}
        )
    return [ApiKey.from_doc({**d, "revoked_at": now}) for d in docs]
