"""StatePersistenceManager under SIGKILL at random moments of a save loop (real processes).

A child process saves an increasing counter and prints each value only after `save_state`
returned (its acknowledgement). The parent kills it with SIGKILL at a seeded random moment,
then checks recovery: the file loads without falling back, holds at least the last
acknowledged value, and the dead child's temp files are swept. The full crash/power-loss
harness of pytest-edge goes further; this is the module's own check.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from reference_impl.production_patterns import StatePersistenceManager

CHILD = """
import sys
from reference_impl.production_patterns import StatePersistenceManager

manager = StatePersistenceManager(sys.argv[1])
report = manager.load_state()
counter = manager.get_state("counter", 0)
filler = "x" * 20000
while True:
    counter += 1
    manager.set_state("counter", counter)
    manager.set_state("filler", filler)
    manager.save_state()
    print(counter, flush=True)
"""

ROOT = Path(__file__).resolve().parents[2]


def test_sigkill_at_random_moments_never_loses_an_acknowledged_save(
    tmp_path: Path, edge_seed: int
) -> None:
    rng = random.Random(edge_seed)
    path = tmp_path / "state.json"
    last_acked = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _cycle in range(5):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert child.stdout is not None
            target = rng.randint(1, 15)
            for _ in range(target):
                line = child.stdout.readline()
                assert line, "child exited early"
                last_acked = int(line)
            child.send_signal(signal.SIGKILL)
            child.wait()
            # Acknowledgements already in the pipe count too.
            for line in child.stdout.read().split():
                last_acked = int(line)
        finally:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
        recovered = StatePersistenceManager(path)
        report = recovered.load_state()
        assert report.source == "current", report
        counter = recovered.get_state("counter")
        assert counter >= last_acked
        assert counter <= last_acked + 1  # at most the save in flight when killed
        assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
