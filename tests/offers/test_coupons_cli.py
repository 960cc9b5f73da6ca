"""`shopfront coupons export`: a campaign's codes as CSV."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from shopfront.cli import main
from shopfront.offers import coupon_service
from shopfront.offers.coupon_service import CouponService
from shopfront.platform.config import Settings
from shopfront.platform.store import open_store


async def seed(settings: Settings) -> list[str]:
    store = await open_store(settings, settings.mongodb_uri)
    try:
        service = CouponService(store, settings)
        await service.create_campaign(
            {
                "id": "spring",
                "title": "Spring",
                "currency": "EUR",
                "discount": {"kind": "percent", "percent": "10"},
            }
        )
        await service.add_shared_code("spring", "SPRING10")
        await service.generate_codes("spring", 1200)  # more than one insert batch
        return [c.code async for c in service.export_codes("spring")]
    finally:
        await store.close()


async def drop(settings: Settings) -> None:
    store = await open_store(settings, settings.mongodb_uri)
    await store.drop_database()
    await store.close()


def test_export_writes_every_code(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coupon_service, "EXPORT_BATCH", 500)  # several batches
    codes = asyncio.run(seed(settings))
    env = {
        "SHOPFRONT_MONGODB_URI": settings.mongodb_uri,
        "SHOPFRONT_MONGODB_DATABASE": settings.mongodb_database,
    }
    out = tmp_path / "codes.csv"
    try:
        result = CliRunner().invoke(
            main, ["coupons", "export", "spring", "--out", str(out)], env=env
        )
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(out.open()))
        assert [r["code"] for r in rows] == codes  # oldest first
        assert len(rows) == 1201 and len(set(codes)) == 1201
        assert rows[0]["code"] == "SPRING10" and rows[0]["kind"] == "shared"
        assert rows[0]["max_uses"] == ""
        assert {r["kind"] for r in rows[1:]} == {"unique"}
        assert all(r["max_uses"] == "1" and r["used"] == "0" for r in rows[1:])
        assert "wrote 1201 codes" in result.output
        missing = CliRunner().invoke(
            main, ["coupons", "export", "nope", "--out", str(out)], env=env
        )
        assert missing.exit_code != 0 and "no campaign 'nope'" in missing.output
        assert len(list(csv.DictReader(out.open()))) == 1201  # the earlier file is untouched
    finally:
        asyncio.run(drop(settings))
