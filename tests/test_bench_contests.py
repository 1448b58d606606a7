"""``python -m ringq bench`` contests (ringq.bench.contest): the async group, the harness.

No timing is asserted (timings belong to the benchmark): these tests check that each
contest runs, produces a row for every contender, checks its results, skips a
contender that is not installed with a line saying so, and marks noisy rows.
"""
import json
import subprocess
import sys

import pytest

import _helpers
from ringq.bench import async_toolkit, contest, registry
from ringq.bench.workloads import Metric

ASYNC = ["async-pipeline", "aacquire", "loop-lag"]


def test_the_async_group_is_registered_and_runs_only_when_named():
    assert registry.ALIASES["async"] == ASYNC
    assert all(registry.CONTESTS[name] is async_toolkit.CONTESTS[name] for name in ASYNC)
    assert not any(registry.CONTESTS[name].in_default_run for name in ASYNC)


@pytest.mark.parametrize("impl_name", ["cython", "python"])
def test_the_async_contests_run_quick_with_a_row_for_every_contender(impl_name):
    if impl_name == "cython":
        try:
            _helpers.import_compiled("ringq._queue_c")
        except ImportError:
            pytest.skip("the compiled core is not built")
    pytest.importorskip("aiolimiter")  # the aacquire contest's peer: in the bench extra
    # A child process: a hard bound on the time, whatever the contests do.
    proc = subprocess.run(
        [sys.executable, "-m", "ringq", "bench", "--quick", "--workload", "async", "--json", "-"],
        env=_helpers.child_env(impl_name), capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads(proc.stdout)
    assert document["format"] == "ringq-bench-contest/1"
    assert document["ringq"]["implementation"] == impl_name
    assert list(document["workloads"]) == ASYNC
    for name in ASYNC:
        found = document["workloads"][name]
        assert found["error"] is None and found["skipped"] == {}
        expected = [entry.name for entry in registry.CONTESTS[name].entries]
        assert list(found["entries"]) == expected
        for entry in expected:
            rounds = found["entries"][entry]["rounds"]
            assert len(rounds) == contest.MIN_ROUNDS  # one figure per round, every contender
            assert all(key in figures for figures in rounds for key in found["entries"][entry]["median"]
                       if key != "aacquire_p99_ms")
        # Every contender is interleaved within each round (the order rotates).
        assert found["orders"][0] != found["orders"][1] and sorted(found["orders"][0]) == sorted(expected)
        # The table (on stderr with --json -) has a row for each contender.
        table = proc.stderr[proc.stderr.index(f"\n{name}: "):]
        for entry in expected:
            assert f"\n  {entry} " in table
    lag = document["workloads"]["loop-lag"]["entries"]
    assert all(f["aacquires"] >= 1 for f in lag["ringq.RateLimiter + ringq.Queue"]["rounds"])
    assert "target >= 3x the hand-written asyncio.Queue chain: " in proc.stderr
    assert "target >= 2x aiolimiter: " in proc.stderr


def test_aacquire_skips_aiolimiter_with_a_line_when_it_is_not_installed(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "aiolimiter", None)  # import aiolimiter now fails
    run = contest.run_contest(registry.CONTESTS["aacquire"], 200, contest.MIN_ROUNDS, sys.stderr)
    assert [entry.name for entry in run.entries] == ["ringq.RateLimiter.aacquire"]
    assert "aiolimiter is not installed (pip install 'ringq[bench]'" in run.skipped["aiolimiter.AsyncLimiter"]
    assert len(run.rounds["ringq.RateLimiter.aacquire"]) == contest.MIN_ROUNDS and run.error is None
    text = contest.report([run], contest.MIN_ROUNDS)
    assert "  skipped aiolimiter.AsyncLimiter: aiolimiter is not installed" in text
    assert "target >= 2x aiolimiter: n/a" in text
    assert "aacquire: skipping aiolimiter.AsyncLimiter: aiolimiter is not installed" in capsys.readouterr().err


def test_loop_lag_checks_its_results_and_reports_both_percentiles():
    figures = async_toolkit._loop_lag(True)(30)
    assert figures["ticks"] >= 1 and figures["thread_ops"] > 0 and figures["aacquires"] >= 1
    assert 0 <= figures["p50_ms"] <= figures["p99_ms"]
    threads_only = async_toolkit._loop_lag(True, loop_takes=False)(30)
    assert "aacquires" not in threads_only and threads_only["thread_ops"] > 0
    plain = async_toolkit._loop_lag(False)(30)
    assert "aacquire_p99_ms" not in plain and plain["thread_ops"] > 0


def test_percentile_is_the_nearest_rank():
    values = [float(i) for i in range(1, 101)]
    assert async_toolkit.percentile(values, 0.99) == 99.0
    assert async_toolkit.percentile(values, 0.50) == 50.0
    assert async_toolkit.percentile([7.0], 0.99) == 7.0


# --- the harness ------------------------------------------------------------------------


def _fake(name, values, versus=()):
    """A contender whose measured runs return *values* in turn (warm-up runs are size 1)."""
    pending = list(values)

    def run(n):
        if n == 1:
            return {"per_s": 1.0}
        return {"per_s": pending.pop(0)}

    return contest.Contender(name, run, versus)


def _contest(*entries, target=None):
    return contest.Contest("fake", "fakes", "{size} fakes", (Metric("per_s", "items/s", True),),
                           50, 50, entries, target=target, target_text=">= 2x b")


def test_noisy_rows_are_marked_and_ratios_are_medians():
    fake = _contest(_fake("a", [400, 400, 400, 400, 1000], ("b",)), _fake("b", [100, 100, 100, 100, 100]),
                    target=2.0)
    run = contest.run_contest(fake, 50, 5)
    assert run.ratio("a", "b", fake.metrics[0]) == 4.0
    assert run.noisy("a") and not run.noisy("b")
    text = contest.report([run], 5)
    row_a = next(line for line in text.splitlines() if line.startswith("  a "))
    row_b = next(line for line in text.splitlines() if line.startswith("  b "))
    assert "±75.0% !" in row_a and "4.00x b" in row_a
    assert "±0.0%" in row_b and "!" not in row_b
    assert "target >= 2x b: 4.00x, met" in text
    assert "Noisy rows: fake/a" in text
    assert run.orders[:2] == [["a", "b"], ["b", "a"]]


def test_a_wrong_result_fails_the_contest_and_the_exit_status(capsys):
    def wrong(n):
        contest.check(n == 1, "lost 3 items")  # right in the warm-up, wrong when measured
        return {"per_s": 1.0}

    fake = _contest(contest.Contender("a", wrong), _fake("b", [1.0] * 5))
    assert contest.main([fake], 5, True, sys.stdout, sys.stderr) == 1
    out, err = capsys.readouterr()
    assert "FAILED: ContestError: lost 3 items" in out
    assert "ringq bench: FAILED: fake" in err


def test_fewer_rounds_than_the_minimum_is_an_error():
    with pytest.raises(ValueError, match="below the minimum of 5"):
        contest.run_contest(_contest(_fake("a", [1.0])), 50, 4)
