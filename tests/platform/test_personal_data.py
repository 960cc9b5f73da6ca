"""The personal-data registry drives retention: one TTL index per shopper collection, its
lifetime from that collection's setting, created idempotently at start-up."""

from __future__ import annotations

from shopfront.platform.personal_data import PERSONAL_DATA
from shopfront.platform.store import INDEXES, open_store
from shopfront.testing import test_settings

DAY = 86_400


def test_every_shopper_collection_has_a_retention_setting_and_session_index() -> None:
    settings = test_settings("mongodb://unused")
    for c in PERSONAL_DATA:
        assert c.retention_days(settings) >= 1, c.name
        keys = {"_id"} | {next(iter(m.document["key"])) for m in INDEXES.get(c.name, [])}
        assert c.user_field in keys, f"{c.name}.{c.user_field} needs an index for erasure"
        if c.session_field is not None:
            assert c.session_field in keys, f"{c.name}.{c.session_field} needs an index"


async def test_retention_indexes_follow_settings_and_replace_plain_ones(mongo_uri: str) -> None:
    first = test_settings(mongo_uri, profile_retention_days=40, exposure_retention_days=9)
    store = await open_store(first, mongo_uri)
    try:
        for c in PERSONAL_DATA:
            info = await store.collection(c.name).index_information()
            index = info[c.ttl_index_name]
            assert index["key"] == [(c.clock, 1)], c.name
            expected = 0 if c.clock_is_expiry else c.retention_days(first) * DAY
            assert index["expireAfterSeconds"] == expected, c.name
        assert (await store.collection("profiles").index_information())["updated_at_ttl"][
            "expireAfterSeconds"
        ] == 40 * DAY

        # An index an older version created on a field that now has a TTL index is replaced,
        # and a restart with other settings changes the lifetimes in place.
        await store.collection("exposures").drop_index("at_ttl")
        await store.collection("exposures").create_index("at", name="at_1")
        again = test_settings(
            mongo_uri, mongodb_database=first.mongodb_database, exposure_retention_days=3
        )
        other = await open_store(again, mongo_uri)
        await other.close()
        info = await store.collection("exposures").index_information()
        assert "at_1" not in info
        assert info["at_ttl"]["expireAfterSeconds"] == 3 * DAY
    finally:
        await store.drop_database()
        await store.close()
