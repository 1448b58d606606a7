"""A pytest plugin for the child run of janus's suite (tests/test_foreign_suites.py): ``-p ringq_janus_plugin``.

Two of janus's async tests call the blocking ``sync_q.get()``/``join()`` on the event
loop's own thread, while helper threads unblock them. ringq refuses that by default
(LoopBlockingError: it would freeze the loop); these two run inside
``ringq.allow_blocking()``, the documented opt-out, so that the rest of what they
check is checked.
"""
import pytest

import ringq

BLOCKING_ON_THE_LOOP = {("TestQueue", "test_queue_join"), ("TestQueue", "test_simple_queue")}


@pytest.fixture(autouse=True)
def _ringq_allow_blocking(request):
    cls = request.node.cls
    if cls is not None and (cls.__name__, request.node.name) in BLOCKING_ON_THE_LOOP:
        with ringq.allow_blocking():
            yield
    else:
        yield
