"""The image installs its dependencies from a lock file with hashes: every runtime dependency
of pyproject.toml is pinned there, to a version above its floor, with sha256 hashes, and the
Dockerfile installs it with --require-hashes before the service itself."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "docker" / "requirements.lock"
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def locked() -> dict[str, tuple[Version, int]]:
    """Package -> (pinned version, number of hashes)."""
    pins: dict[str, tuple[Version, int]] = {}
    current: str | None = None
    for line in LOCK.read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", line)
        if pin:
            current = canonicalize_name(pin.group(1))
            pins[current] = (Version(pin.group(2)), 0)
        elif current and re.match(r"^\s+--hash=sha256:[0-9a-f]{64}", line):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def test_the_lock_pins_every_runtime_dependency_above_its_floor_with_hashes() -> None:
    pins = locked()
    assert pins, "docker/requirements.lock has no pinned packages"
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in docker/requirements.lock (make lock)"
        version, hashes = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name}=={version} is below the floor {requirement.specifier} (make lock)"
        )
    for name, (version, hashes) in pins.items():
        assert hashes >= 1, f"{name}=={version} has no hash"


def test_the_lock_holds_no_test_only_or_embedded_packages() -> None:
    pins = locked()
    for name in ("pytest", "secantusdb", "hypothesis", "mypy"):
        assert name not in pins, f"{name} does not belong in the production image"


def test_the_dockerfile_installs_from_the_lock_with_hashes() -> None:
    text = DOCKERFILE.read_text()
    assert "COPY docker/requirements.lock" in text
    install = re.search(r"pip install --require-hashes --no-deps -r (\S+)", text)
    assert install is not None, "the Dockerfile must install the lock with --require-hashes"
    assert install.group(1).endswith("requirements.lock")
    # The service's own wheel comes after, without resolving anything from an index.
    after = text[install.end() :]
    assert re.search(r"pip install --no-deps /wheels/", after)
    assert not re.search(r"pip install (?!--require-hashes|--no-deps)", text)
