"""The seeds' programs in examples/ run, and do what they claim.

Each example's main() is imported and called in this process, so it uses
whichever ringq.Queue is loaded (CI runs the suite compiled and pure-Python).
"""
import importlib.util
import os
import threading

import pytest

from _helpers import LONG, Call, wait_until

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load(name):
    path = os.path.join(EXAMPLES, name + ".py")
    if not os.path.exists(path):
        pytest.skip(f"{path} is not here (the tests run without the examples folder)")
    spec = importlib.util.spec_from_file_location(f"ringq_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    assert wait_until(lambda: set(threading.enumerate()) <= before, timeout=LONG), (
        f"threads left running: {set(threading.enumerate()) - before}")


def test_log_pipeline_drains_every_entry_after_the_last_producer():
    counts = Call(load("log_pipeline").main, 300, 0.0002).value(LONG * 3)
    assert sorted(counts) == [f"worker-{c}" for c in range(5)]
    assert sum(counts.values()) == 900  # main() also checks no entry is lost or duplicated
    assert sum(1 for c in counts.values() if c > 0) >= 2  # the work was shared


def test_worker_pool_returns_results_and_errors_to_the_submitter():
    module = load("worker_pool")
    outcome = Call(module.main, 30).value(LONG * 3)
    assert len(outcome) == 30
    errors = {url for url, (kind, _) in outcome.items() if kind == "error"}
    assert errors == {url for url in outcome if "invalid" in url} and errors
    assert all(isinstance(value, module.FetchError) for kind, value in outcome.values() if kind == "error")
    assert all(value == 200 for kind, value in outcome.values() if kind == "ok")


def test_image_pipeline_uploads_every_image_in_order():
    urls = Call(load("image_pipeline").main, 40).value(LONG * 3)
    assert urls == [f"https://cdn.example.com/img{i:03}.png" for i in range(40)]


def test_rate_limited_requests_keep_to_the_rate():
    sent = Call(load("rate_limited_requests").main, 20, 50, 5).value(LONG * 3)
    assert len(sent) == 20
    # A burst of 5 goes at once; the other 15 follow at 50/s, so the last is >= 0.3 s in.
    assert sent[-1] - sent[0] >= 15 / 50 * 0.9
    # Never more than burst + rate * t requests by time t after the first.
    for i, t in enumerate(sent):
        assert i + 1 <= 5 + 50 * (t - sent[0]) + 1e-6 + 1, (i, t)

