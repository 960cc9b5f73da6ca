"""Shopper identity: the signed tokens that say which shopper a storefront request is for,
and the rule that makes an anonymous session id unguessable.

The storefront key is public; it proves nothing about the shopper. The merchant's backend,
which knows who is logged in, mints a short-lived **shopper token** — a JWT signed with HS256
under a secret only it and Shopfront hold (``SHOPFRONT_SHOPPER_TOKEN_SECRETS``) — and the
storefront sends it as ``X-Shopper-Token``. Claims:

- ``sub``: the shopper's opaque id (``userId``);
- ``sid``: optional, the session id the shopper is on (``identify`` needs it);
- ``iat``, ``exp``: issued and expiry times; a token may live at most `MAX_TTL_S` (24 h).

The header's ``kid`` names the secret that signed it, so several secrets verify at once and a
secret is rotated by adding the new one first, waiting a token lifetime, then removing the
old. Tokens are minted by `ShopperTokens.mint` (the ``createShopperToken`` mutation) or
offline by any JWT library with the same secret and ``kid``.
"""

from __future__ import annotations

import math
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from shopfront.platform.config import Settings, token_secrets
from shopfront.shoppers.privacy import identifier_problem

ALGORITHM = "HS256"
DEFAULT_TTL_S = 3600
MAX_TTL_S = 24 * 3600
# Clock skew tolerated between the minting backend and this service.
LEEWAY_S = 30
MAX_TOKEN_LEN = 4096
HEADER = "X-Shopper-Token"
SESSION_MIN_BITS = 128


class TokenError(ValueError):
    """A shopper token cannot be used; the message says why (never echoing the token)."""


class TokenExpired(TokenError):
    pass


class TokensNotConfigured(TokenError):
    """No shopper-token secret is configured, so tokens can be neither minted nor checked."""


@dataclass(frozen=True)
class ShopperClaims:
    """A verified shopper token."""

    user_id: str
    session_id: str | None
    issued_at: datetime
    expires_at: datetime
    kid: str


class ShopperTokens:
    """Mints and verifies shopper tokens with the configured secrets (the first signs)."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self._secrets = dict(secrets)

    @classmethod
    def from_settings(cls, settings: Settings) -> ShopperTokens:
        return cls(token_secrets(settings.shopper_token_secrets))

    @property
    def configured(self) -> bool:
        return bool(self._secrets)

    def mint(
        self,
        user_id: str,
        session_id: str | None = None,
        ttl_seconds: int = DEFAULT_TTL_S,
        *,
        now: datetime | None = None,
    ) -> tuple[str, datetime]:
        """A signed token for ``user_id`` (and ``session_id``) and when it expires.
        Raises `TokenError` for a bad id or lifetime, `TokensNotConfigured` without secrets."""
        if not self._secrets:
            raise TokensNotConfigured(
                "no shopper-token secret is configured: set SHOPFRONT_SHOPPER_TOKEN_SECRETS"
            )
        problem = identifier_problem(user_id)
        if problem:
            raise TokenError(f"userId: {problem}")
        if session_id is not None:
            problem = session_id_problem(session_id)
            if problem:
                raise TokenError(f"sessionId: {problem}")
        if not 1 <= ttl_seconds <= MAX_TTL_S:
            raise TokenError(f"ttlSeconds: must be from 1 to {MAX_TTL_S} (24 hours)")
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        expires = issued + timedelta(seconds=ttl_seconds)
        claims: dict[str, Any] = {"sub": user_id, "iat": issued, "exp": expires}
        if session_id is not None:
            claims["sid"] = session_id
        kid, secret = next(iter(self._secrets.items()))
        token = jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})
        return token, expires

    def verify(self, token: str, *, now: datetime | None = None) -> ShopperClaims:
        """The claims of a valid token, or `TokenError` saying what is wrong with it."""
        if not self._secrets:
            raise TokensNotConfigured(
                "shopper tokens cannot be checked: SHOPFRONT_SHOPPER_TOKEN_SECRETS is not set"
            )
        if not token or len(token) > MAX_TOKEN_LEN:
            raise TokenError(f"the shopper token must be 1-{MAX_TOKEN_LEN} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("the shopper token is not a JWT") from None
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM:
            raise TokenError(f"the shopper token must be signed with {ALGORITHM}")
        if not isinstance(kid, str) or kid not in self._secrets:
            raise TokenError(
                "the shopper token's kid names no configured secret (signed with an unknown or "
                "retired secret?)"
            )
        try:
            claims = jwt.decode(
                token,
                self._secrets[kid],
                algorithms=[ALGORITHM],
                # exp and iat are checked below against ``now``, which callers may pin.
                options={
                    "require": ["sub", "exp", "iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise TokenError("the shopper token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"the shopper token is invalid: {exc}") from None
        return _checked_claims(claims, kid, now or datetime.now(UTC))


def _checked_claims(claims: Mapping[str, Any], kid: str, now: datetime) -> ShopperClaims:
    sub, sid, iat, exp = claims.get("sub"), claims.get("sid"), claims.get("iat"), claims.get("exp")
    if not isinstance(sub, str) or identifier_problem(sub):
        raise TokenError("the shopper token's sub must be an opaque shopper id")
    if sid is not None and (not isinstance(sid, str) or identifier_problem(sid)):
        raise TokenError("the shopper token's sid must be a session id string")
    issued_s, expires_s = _number(iat), _number(exp)
    if issued_s is None or expires_s is None:
        raise TokenError("the shopper token's iat and exp must be numeric dates")
    try:
        issued = datetime.fromtimestamp(int(issued_s), UTC)
        expires = datetime.fromtimestamp(int(expires_s), UTC)
    except (OverflowError, OSError, ValueError):
        raise TokenError("the shopper token's iat or exp is out of range") from None
    leeway = timedelta(seconds=LEEWAY_S)
    if expires + leeway <= now:
        raise TokenExpired("the shopper token has expired: mint a new one")
    if issued - leeway > now:
        raise TokenError("the shopper token's iat is in the future (check the minting clock)")
    if expires <= issued or expires - issued > timedelta(seconds=MAX_TTL_S):
        raise TokenError("the shopper token must expire after iat and live at most 24 hours")
    return ShopperClaims(user_id=sub, session_id=sid, issued_at=issued, expires_at=expires, kid=kid)


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


# -- anonymous sessions --------------------------------------------------------------------

_ALPHABETS: tuple[tuple[frozenset[str], int], ...] = (
    (frozenset(string.digits), 10),
    (frozenset(string.ascii_lowercase + string.digits), 36),
    (frozenset(string.ascii_uppercase + string.digits), 36),
    (frozenset(string.ascii_letters + string.digits), 62),
    (frozenset(string.ascii_letters + string.digits + "-_"), 64),
    (frozenset(string.ascii_letters + string.digits + "+/="), 64),
)
# A random 128-bit string has many distinct symbols; a run like "aaaa..." is not random.
_MIN_DISTINCT = 8


def session_bits(session_id: str) -> float:
    """Upper bound of the random bits ``session_id`` can carry: a UUIDv4 counts as 128 (the
    conventional unguessable browser id), otherwise length x bits per symbol of the smallest
    common alphabet it is written in (0 for one that repeats too few symbols)."""
    text = session_id.strip()
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        parsed = None
    if parsed is not None:
        return float(SESSION_MIN_BITS) if parsed.version == 4 else 0.0
    if len(set(text)) < _MIN_DISTINCT:
        return 0.0
    compact = text.replace("-", "")  # hex in dashed groups counts its hex digits
    if compact and set(compact) <= set(string.hexdigits):
        return len(compact) * 4.0
    for alphabet, size in _ALPHABETS:
        if set(text) <= alphabet:
            return len(text) * math.log2(size)
    return 0.0


def session_id_problem(session_id: str) -> str | None:
    """Why ``session_id`` cannot identify an anonymous shopper, or None. It must be
    unguessable: at least 128 random bits, such as a UUIDv4 or 32 random hex characters."""
    problem = identifier_problem(session_id)
    if problem:
        return problem
    if session_bits(session_id) < SESSION_MIN_BITS:
        return (
            f"must be unguessable: at least {SESSION_MIN_BITS} random bits, e.g. a UUIDv4 "
            "(crypto.randomUUID()) or 32 random hex characters"
        )
    return None
