"""The docker/ files cannot be run on these machines, so their contract is checked statically:
the service's environment names real settings, and the image is non-root and health-checked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from shopfront.platform.config import setting_names

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return data


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "NAME=value" list form
        return dict(item.partition("=")[::2] for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_service_environment_names_existing_settings(compose: dict[str, Any]) -> None:
    env = environment(compose["services"]["shopfront"])
    names = [name for name in env if name.startswith("SHOPFRONT_")]
    assert "SHOPFRONT_MONGODB_URI" in names
    unknown = sorted(set(names) - set(setting_names()))
    assert unknown == [], f"compose.yaml sets variables Shopfront does not read: {unknown}"
    assert set(env) == set(names), "the service's environment should hold only SHOPFRONT_*"


MONGO_MEMBERS = ("mongo1", "mongo2", "mongo3")


def test_service_points_at_the_three_member_replica_set(compose: dict[str, Any]) -> None:
    services = compose["services"]
    uri = environment(services["shopfront"])["SHOPFRONT_MONGODB_URI"]
    hosts = uri.removeprefix("mongodb://").split("/")[0].split(",")
    assert hosts == [f"{m}:27017" for m in MONGO_MEMBERS]
    replsets = {
        services[m]["command"][services[m]["command"].index("--replSet") + 1] for m in MONGO_MEMBERS
    }
    assert len(replsets) == 1 and f"replicaSet={replsets.pop()}" in uri
    assert services["shopfront"]["depends_on"]["mongo1"]["condition"] == "service_healthy"
    build = services["shopfront"]["build"]
    context = (DOCKER / build["context"]).resolve()
    assert (context / "pyproject.toml").exists()
    assert (context / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"


def test_mongo_members_persist_and_the_set_is_initiated_with_all(
    compose: dict[str, Any],
) -> None:
    for member in MONGO_MEMBERS:
        mongo = compose["services"][member]
        assert mongo["image"].startswith("mongo:")
        volume = mongo["volumes"][0].split(":")
        assert volume[1] == "/data/db" and volume[0] in compose["volumes"]
    check = " ".join(compose["services"]["mongo1"]["healthcheck"]["test"])
    assert "rs.initiate" in check
    assert all(f"host: '{m}:27017'" in check for m in MONGO_MEMBERS)


def test_serving_replicas_scale_behind_the_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    shop = services["shopfront"]
    assert shop["deploy"]["replicas"] >= 2
    assert "ports" not in shop, "a fixed host port would stop `--scale shopfront=N`"
    proxy = services["proxy"]
    conf_host, conf_target = proxy["volumes"][0].split(":")[:2]
    conf = (DOCKER / conf_host).read_text()
    assert conf_target == "/etc/nginx/nginx.conf"
    assert "server shopfront:8000 resolve" in conf and "resolver 127.0.0.11" in conf
    assert "proxy_pass http://shopfront;" in conf
    assert all(p.startswith("127.0.0.1:") for p in proxy["ports"])


def test_one_dedicated_trainer_on_a_schedule(compose: dict[str, Any]) -> None:
    trainer = compose["services"]["trainer"]
    assert trainer["command"] == ["shopfront", "train", "--schedule"]
    assert float(environment(trainer)["SHOPFRONT_TRAINING_INTERVAL_MINUTES"]) > 0
    assert "deploy" not in trainer  # one process; the lease lock covers accidents
    unknown = sorted(set(environment(trainer)) - set(setting_names()))
    assert unknown == []


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


def instructions(text: str, name: str) -> list[str]:
    """Arguments of every ``name`` instruction, with line continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [
        line.split(None, 1)[1]
        for line in joined.splitlines()
        if line.split(None, 1)[:1] == [name] and len(line.split(None, 1)) == 2
    ]


def test_image_runs_as_non_root(dockerfile: str) -> None:
    users = instructions(dockerfile, "USER")
    assert users, "the image must switch to a non-root user"
    user = users[-1].split(":")[0].strip()
    assert user not in ("root", "0")


def test_image_health_checks_readyz(dockerfile: str) -> None:
    [check] = instructions(dockerfile, "HEALTHCHECK")
    assert "/readyz" in check and "urllib" in check


def test_image_installs_without_the_embedded_extra(dockerfile: str) -> None:
    assert instructions(dockerfile, "FROM")[-1].startswith("python:3.11-slim")
    installs = [r for r in instructions(dockerfile, "RUN") if "pip" in r]
    assert installs and not any("embedded" in r for r in installs)
    assert instructions(dockerfile, "CMD") == ['["shopfront", "serve", "--host", "0.0.0.0"]']
