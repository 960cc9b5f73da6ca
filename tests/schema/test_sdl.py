"""The committed SDL is the contract frontends code against: it must match the code."""

from __future__ import annotations

from shopfront.schema import SDL_PATH, sdl


def test_committed_sdl_matches_code() -> None:
    assert SDL_PATH.exists(), "schema/schema.graphql is missing: run `make schema`"
    assert SDL_PATH.read_text() == sdl(), (
        "schema/schema.graphql is out of date with the code: run `make schema` and commit it"
    )
