"""The embedded MongoDB wire server (SecantusDB's ``secantusd-py``) as a child process.

SecantusDB is GPL-2.0, so it is never imported: it runs as a separate process, found on the
PATH or next to the running interpreter. The child gets its own session (so a Ctrl-C reaches
the service first, which then stops the database in order) and a parent-death signal (so a
crash of the service never leaves an orphan holding the data folder).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from shopfront.platform.store import wait_until_reachable

log = logging.getLogger(__name__)

EXECUTABLE = "secantusd-py"
INSTALL_HINT = "pip install 'shopfront[embedded]'  (or run `make run`, which does it)"
_PR_SET_PDEATHSIG = 1


class EmbeddedUnavailable(RuntimeError):
    """The embedded database cannot be started."""


def find_executable() -> str:
    beside = Path(sys.executable).parent / EXECUTABLE
    if beside.exists():
        return str(beside)
    found = shutil.which(EXECUTABLE)
    if found:
        return found
    raise EmbeddedUnavailable(
        f"SHOPFRONT_MONGODB_URI is not set and the embedded MongoDB server ({EXECUTABLE}) is "
        f"not installed. Install it with: {INSTALL_HINT}; or point SHOPFRONT_MONGODB_URI at a "
        "MongoDB server."
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    os.setsid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedMongo:
    """Start with `start()` (or as a context manager); `uri` is valid once started."""

    def __init__(
        self,
        storage: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        start_timeout_s: float = 30.0,
        test_commands: bool = False,
        log_file: Path | None = None,
    ) -> None:
        self.storage = storage
        self.host = host
        self.port = port or free_port(host)
        self.start_timeout_s = start_timeout_s
        self.test_commands = test_commands
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def start(self) -> EmbeddedMongo:
        exe = find_executable()
        if isinstance(self.storage, Path):
            self.storage.mkdir(parents=True, exist_ok=True)
        cmd = [exe, "--host", self.host, "--port", str(self.port)]
        cmd += ["--storage-path", str(self.storage), "--log-level", "WARNING"]
        if self.test_commands:
            cmd.append("--enable-test-commands")
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
            )
        finally:
            if self.log_file:
                out.close()  # type: ignore[union-attr]
        log.info("embedded MongoDB starting on %s:%s (pid %s)", self.host, self.port, self.pid)
        try:
            wait_until_reachable(self.uri, self.start_timeout_s, self.running)
        except Exception:
            self.stop()
            hint = f"; see {self.log_file}" if self.log_file else ""
            raise EmbeddedUnavailable(f"the embedded MongoDB server did not start{hint}") from None
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask the server to shut down (SIGTERM lets WiredTiger checkpoint), then insist."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)  # a paused server (fault tests) cannot exit
            proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("embedded MongoDB did not stop in %.0fs; killing it", timeout_s)
            proc.kill()
            proc.wait()
        log.info("embedded MongoDB stopped")

    def pause(self) -> None:
        if self.process:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process:
            self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> EmbeddedMongo:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
