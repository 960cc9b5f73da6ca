"""The embedded server: persistent data, clean stop, no orphans, clear error when missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pymongo import MongoClient
from shopfront.platform import embedded
from shopfront.platform.embedded import EmbeddedMongo, EmbeddedUnavailable

from tests.waiting import wait_until


def test_data_survives_restart(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path / "db") as server:
        MongoClient(server.uri).shopfront.things.insert_one({"_id": 1, "v": "kept"})
    with EmbeddedMongo(tmp_path / "db") as server:
        assert MongoClient(server.uri).shopfront.things.find_one({"_id": 1})["v"] == "kept"


def test_missing_executable_names_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "EXECUTABLE", "secantusd-py-not-installed")
    with pytest.raises(EmbeddedUnavailable, match=r"shopfront\[embedded\]"):
        embedded.find_executable()


def test_no_orphan_when_service_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from shopfront.platform.embedded import EmbeddedMongo
        s = EmbeddedMongo({str(tmp_path / "db")!r}).start()
        print(s.pid, flush=True)
        time.sleep(600)  # until killed
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)  # a crash: no cleanup code runs in the parent
    parent.wait()

    def gone() -> bool:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        wait_until(gone, "the embedded database exited with the service")
    except AssertionError:
        os.kill(child_pid, signal.SIGKILL)
        raise
    # and the data folder opens cleanly again
    with EmbeddedMongo(tmp_path / "db") as server:
        assert MongoClient(server.uri).admin.command("ping")["ok"] == 1
