"""The minting examples in docs/security.md produce tokens the service accepts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from shopfront.platform.config import token_secrets
from shopfront.shoppers.identity import ShopperTokens

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
SECRETS = "k2:example-secret-0123456789abcdefghijkl,k1:older-secret-0123456789abcdefghijkl"
SESSION = "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"


def block(language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)
    assert found, f"docs/security.md has no {language} example"
    return found.group(1)


def test_the_python_example_mints_a_token_the_service_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOPFRONT_SHOPPER_TOKEN_SECRETS", SECRETS)
    code = block("python")
    assert len(code.strip().splitlines()) <= 12
    namespace: dict[str, object] = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    mint = namespace["shopper_token"]
    assert callable(mint)
    claims = ShopperTokens(token_secrets(tuple(SECRETS.split(",")))).verify(mint("u42", SESSION))
    assert (claims.user_id, claims.session_id, claims.kid) == ("u42", SESSION, "k2")


def test_the_node_example_mints_a_token_the_service_accepts(tmp_path: Path) -> None:
    node = shutil.which("node")
    found = (
        subprocess.run(
            [node or "node", "-e", "require.resolve('jsonwebtoken')"], capture_output=True
        )
        if node
        else None
    )
    if found is None or found.returncode != 0:
        pytest.skip("node with the jsonwebtoken package is not installed here")
    script = tmp_path / "mint.js"
    script.write_text(block("js") + f"\nconsole.log(shopperToken('u42', '{SESSION}'));\n")
    out = subprocess.run(
        [node or "node", str(script)],
        capture_output=True,
        text=True,
        env={
            "SHOPFRONT_SHOPPER_TOKEN_SECRETS": SECRETS,
            "PATH": os.environ.get("PATH", ""),
            "NODE_PATH": os.environ.get("NODE_PATH", ""),
        },
        check=True,
    )
    claims = ShopperTokens(token_secrets(tuple(SECRETS.split(",")))).verify(out.stdout.strip())
    assert (claims.user_id, claims.session_id) == ("u42", SESSION)
