"""No IP address or shopper id in logs unless SHOPFRONT_LOG_PII=true."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime

import pytest
from shopfront.platform.logs import JsonFormatter, shopper_ref
from shopfront.shoppers.profile_view import Profile
from shopfront.testing import StorefrontClientFactory

SHOPPER = "shopper-log-31"
CLIENT_IP = "127.0.0.1"  # what httpx's ASGI transport reports as the client address


class BrokenProfiles:
    async def load(self, user_id: str, now: datetime) -> Profile | None:
        raise OSError("profile store unreachable")


def lines(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(JsonFormatter().format(r) for r in caplog.records)


@pytest.mark.parametrize("log_pii", [False, True])
async def test_logs_carry_no_address_or_shopper_id_unless_asked(
    storefront_client: StorefrontClientFactory, caplog: pytest.LogCaptureFixture, log_pii: bool
) -> None:
    sf = await storefront_client(profiles=BrokenProfiles(), log_pii=log_pii)
    with caplog.at_level(logging.INFO):
        await sf.query({"page": "HOME", "userId": SHOPPER, "sessionId": uuid.uuid4().hex})
    text = lines(caplog)
    requests = [r for r in caplog.records if r.name == "shopfront.request"]
    request_lines = [json.loads(JsonFormatter().format(r)) for r in requests]
    assert len(request_lines) == 1
    assert "profile of" in text  # the warning about the shopper's profile was logged
    if log_pii:
        assert request_lines[0]["client"] == CLIENT_IP
        assert SHOPPER in text
    else:
        assert request_lines[0]["client"] is None
        assert CLIENT_IP not in text and SHOPPER not in text
        assert shopper_ref(SHOPPER, False) in text  # still correlatable within the process


def test_shopper_ref_hashes_unless_pii_logging_is_on() -> None:
    assert shopper_ref("u1", True) == "u1"
    hashed = shopper_ref("u1", False)
    assert hashed.startswith("id:") and "u1" not in hashed
    assert hashed == shopper_ref("u1", False) != shopper_ref("u2", False)
    assert shopper_ref(None, False) == "-"
