"""The Kubernetes example is checked statically (no cluster here): every object is well formed
for its kind, probes hit the service's health endpoints, and what it sets is real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from shopfront.platform.config import setting_names

MANIFEST = Path(__file__).resolve().parents[2] / "docker" / "k8s" / "shopfront.yaml"


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    for d in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(d), d
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return list(deployment["spec"]["template"]["spec"]["containers"])


def test_objects_are_the_documented_ones(objects: dict[tuple[str, str], Any]) -> None:
    assert set(objects) == {
        ("Deployment", "shopfront"),
        ("Deployment", "shopfront-trainer"),
        ("Service", "shopfront"),
        ("PodDisruptionBudget", "shopfront"),
    }
    for (kind, _), obj in objects.items():
        expected = {"Deployment": "apps/v1", "Service": "v1", "PodDisruptionBudget": "policy/v1"}
        assert obj["apiVersion"] == expected[kind]


def test_selectors_match_the_pod_labels(objects: dict[tuple[str, str], Any]) -> None:
    serving = objects[("Deployment", "shopfront")]
    labels = serving["spec"]["template"]["metadata"]["labels"]
    assert serving["spec"]["selector"]["matchLabels"] == labels
    assert objects[("Service", "shopfront")]["spec"]["selector"] == labels
    assert objects[("PodDisruptionBudget", "shopfront")]["spec"]["selector"]["matchLabels"] == (
        labels
    )
    trainer = objects[("Deployment", "shopfront-trainer")]
    trainer_labels = trainer["spec"]["template"]["metadata"]["labels"]
    assert trainer["spec"]["selector"]["matchLabels"] == trainer_labels
    assert trainer_labels != labels, "the Service must not route storefront traffic to the trainer"


def test_serving_pods_probe_health_and_request_resources(
    objects: dict[tuple[str, str], Any],
) -> None:
    serving = objects[("Deployment", "shopfront")]
    assert serving["spec"]["replicas"] >= 2
    pdb = objects[("PodDisruptionBudget", "shopfront")]["spec"]
    assert pdb["minAvailable"] < serving["spec"]["replicas"]
    (c,) = containers(serving)
    port = c["ports"][0]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": port["name"]}
    assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]
    service_port = objects[("Service", "shopfront")]["spec"]["ports"][0]
    assert service_port["targetPort"] == port["name"]


def test_environment_names_real_settings_and_the_uri_is_a_secret(
    objects: dict[tuple[str, str], Any],
) -> None:
    known = set(setting_names())
    for name in ("shopfront", "shopfront-trainer"):
        for c in containers(objects[("Deployment", name)]):
            env = {e["name"]: e for e in c["env"]}
            assert set(env) <= known, sorted(set(env) - known)
            assert "secretKeyRef" in env["SHOPFRONT_MONGODB_URI"]["valueFrom"]
    (trainer,) = containers(objects[("Deployment", "shopfront-trainer")])
    assert trainer["args"] == ["shopfront", "train", "--schedule"]
    assert objects[("Deployment", "shopfront-trainer")]["spec"]["replicas"] == 1
