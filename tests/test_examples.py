"""The runnable examples in examples/ work, on both implementations."""
import os
import subprocess
import sys

import pytest

import _helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("workers", ["1", "3"])
def test_priority_jobs_example(impl, workers):
    # Seed 003's priority-based processing; the script checks its own run and exits 1 on a failure.
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "priority_jobs.py"), "--workers", workers],
        env=_helpers.child_env(impl), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rejected: Invalid priority: urgent" in proc.stdout
    assert f"36 jobs ran with {workers} workers (ringq {impl})" in proc.stdout
    assert "ok: every job ran once, by priority, FIFO within a priority" in proc.stdout
