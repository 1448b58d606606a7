"""Every program in examples/ runs and exits 0, on both implementations.

The examples are found by globbing examples/*.py, so a new one is run here without
touching this file. Each runs as ``python examples/NAME.py`` in a child process, in a
fresh temporary directory (an example may write files there), with the arguments in
ARGS (none by default). The child first checks that it loaded the implementation the
test is bound to. An example that uses Redis (it imports ``redis`` or ``ringq.redis``)
gets a fresh redis-server, whose URL is in REDIS_URL; without a server or redis-py
it is skipped, with the reason.
"""
import glob
import os
import re
import subprocess
import sys

import pytest

import _helpers
import _redis_server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))

# Arguments for the examples that need some; "{redis_url}" is replaced by the server's URL.
ARGS = {
    "redis_log_pipeline.py": ["demo", "--url", "{redis_url}", "--lines", "300", "--timeout", "60"],
}

# Run the example as __main__, after checking which ringq it got.
RUNNER = """\
import runpy, sys
import ringq
assert ringq.IMPLEMENTATION == sys.argv[1], ("loaded", ringq.IMPLEMENTATION, "wanted", sys.argv[1])
path = sys.argv[2]
sys.argv = [path] + sys.argv[3:]
sys.path.insert(0, __import__("os").path.dirname(path))
runpy.run_path(path, run_name="__main__")
"""

USES_REDIS = re.compile(
    r"^\s*(import redis\b|from redis\b|import ringq\.redis\b|from ringq\.redis\b|from ringq import .*\bredis\b)",
    re.MULTILINE,
)


def uses_redis(path):
    with open(path, encoding="utf-8") as f:
        return USES_REDIS.search(f.read()) is not None


def test_the_examples_are_found():
    # Guards the glob: a moved folder must not turn this file into zero tests.
    assert len(EXAMPLES) >= 7, EXAMPLES
    assert any(uses_redis(path) for path in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=[os.path.basename(p) for p in EXAMPLES])
def test_example_exits_0(impl, path, tmp_path):
    env = _helpers.child_env(impl)
    name = os.path.basename(path)
    args = ARGS.get(name, [])
    if uses_redis(path):
        reason = _redis_server.skip_reason()
        if reason:
            pytest.skip(f"{name} needs Redis: {reason}")
        server = _redis_server.RedisServer(tmp_path / "redis")
        server.start()
    else:
        server = None
    try:
        if server is not None:
            env["REDIS_URL"] = server.url
            args = [a.replace("{redis_url}", server.url) for a in args]
        work = tmp_path / "work"
        work.mkdir()
        proc = subprocess.run([sys.executable, "-c", RUNNER, impl, path, *args], cwd=str(work), env=env,
                              capture_output=True, text=True, timeout=180)
    finally:
        if server is not None:
            server.stop()
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


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


# Seed 003's programs (issue 20, section 5): each runs above with both implementations, like every
# example; here their stdlib versions, which the README's line counts compare against.
ASYNC_SEED_003 = ["async_bounded_queue", "async_worker_pool", "async_backpressure",
                  "async_adaptive_rate", "async_request_queue"]


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
         "--rounds", "5", "--loop", loop],
        env=_helpers.child_env(impl), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"{loop} loop\n"), proc.stdout
    assert f"ringq.IMPLEMENTATION = '{impl}'" in proc.stdout
    assert "async-pipeline: 3,000 ints through 3 async def stages of trivial coroutines" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith("  ringq.Pipeline, ")]
    assert len(rows) == 2 and all(row[-4].endswith("x") for row in rows), proc.stdout  # a ratio each
    assert "  hand-written asyncio.Queue chain " in proc.stdout
    assert "  target >= 3x the hand-written asyncio.Queue chain: " in proc.stdout
