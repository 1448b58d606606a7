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


ASYNC_SEED_003 = ["async_bounded_queue", "async_worker_pool", "async_backpressure",
                  "async_adaptive_rate", "async_request_queue"]


@pytest.mark.parametrize("name", ASYNC_SEED_003)
def test_seed_003_async_examples(impl, name):
    # Seed 003's programs, async (issue 20, section 5); each checks its own run and exits 1 on a failure.
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", name + ".py")],
        env=_helpers.child_env(impl), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ok: "), proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ASYNC_SEED_003)
def test_seed_003_stdlib_versions_still_do_the_same(name):
    # The stdlib versions the examples are measured against (benchmarks/seed003_stdlib) pass the same checks.
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "seed003_stdlib", name + ".py")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ok: "), proc.stdout + proc.stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_async_pipeline_benchmark_runs_and_checks_its_results(impl, loop):
    # benchmarks/async_pipeline.py (issue 20, section 6) at a small size: it still works, on both loops.
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "async_pipeline.py"), "--items", "3000",
         "--rounds", "1", "--loop", loop],
        env=_helpers.child_env(impl), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"3,000 items, 3 async stages of trivial coroutines, {loop} loop, ringq {impl}" in proc.stdout
    assert proc.stdout.count("x\n") == 3, proc.stdout
