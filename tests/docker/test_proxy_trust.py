"""Behind compose's nginx every request comes from the proxy: the service trusts its
X-Forwarded-For from exactly the project's own network, so shoppers get their own buckets."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml
from shopfront.platform.client_address import ClientAddresses, parse_trusted

COMPOSE = Path(__file__).resolve().parents[2] / "docker" / "compose.yaml"


def test_compose_trusts_its_own_network_and_nothing_wider() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    trusted = compose["x-shopfront-env"]["SHOPFRONT_TRUSTED_PROXIES"]
    blocks = parse_trusted(trusted.split(","))  # refuses '*' and /0
    subnets = [c["subnet"] for c in compose["networks"]["default"]["ipam"]["config"]]
    assert [str(b) for b in blocks] == subnets
    assert all(ipaddress.ip_network(s).is_private for s in subnets)
    nginx = next(iter(ipaddress.ip_network(subnets[0]).hosts()))
    headers = {"x-forwarded-for": "198.51.100.23"}
    assert ClientAddresses.of(trusted.split(",")).resolve(str(nginx), headers) == "198.51.100.23"
