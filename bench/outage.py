"""Database outage timings: how long the service takes to report itself unready after the
database stops answering, and ready again after it comes back, under steady query traffic.

    python -m bench.outage [--runs 3]

The contract (checked here, not in the tests, because shared machines are noisy): unready
within 2 s of the outage, ready within 5 s of recovery. The tests
(tests/faults/test_database_faults.py) check that it happens and what clients get meanwhile;
this reuses their service and traffic. Starts its own embedded server with test commands.
Exit status 1 when a run misses the contract.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from shopfront.platform.embedded import EmbeddedMongo

from tests.faults.test_database_faults import Traffic, answered_ok_after, faulty_service

UNREADY_WITHIN_S = 2.0
READY_WITHIN_S = 5.0


async def one_run(server: EmbeddedMongo) -> tuple[float, float]:
    async with faulty_service(server) as svc:
        traffic = Traffic(svc)
        async with traffic.running():
            await traffic.until(lambda tr: tr.answered(0) >= 4, "traffic flows")
            paused_at = time.monotonic()
            server.pause()
            try:
                unready_at = await traffic.until(
                    lambda tr: tr.first_probe(paused_at, False), "unready"
                )
                await asyncio.sleep(2.0)  # an outage of a few seconds, as in production
            finally:
                server.resume()
            resumed_at = time.monotonic()
            ready_at = await traffic.until(lambda tr: tr.first_probe(resumed_at, True), "ready")
            await traffic.until(answered_ok_after(resumed_at), "answered again")
    return unready_at - paused_at, ready_at - resumed_at


async def main(runs: int) -> int:
    missed = 0
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedMongo(Path(folder) / "db", test_commands=True).start()
        try:
            for i in range(runs):
                unready, ready = await one_run(server)
                ok = unready < UNREADY_WITHIN_S and ready < READY_WITHIN_S
                missed += not ok
                print(
                    f"run {i + 1}: unready after {unready:.2f} s (contract {UNREADY_WITHIN_S} s), "
                    f"ready after {ready:.2f} s (contract {READY_WITHIN_S} s)"
                    + ("" if ok else "  MISSED")
                )
        finally:
            server.stop()
    return 1 if missed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    sys.exit(asyncio.run(main(parser.parse_args().runs)))
