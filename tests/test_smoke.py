"""A first end-to-end check of the installed package; the full suite lives beside it."""
import queue

import ringq


def test_fifo_and_batch_roundtrip():
    q = ringq.Queue(4)
    q.put_many(range(4))
    assert q.full()
    assert q.get_many(10) == [0, 1, 2, 3]
    assert q.unfinished_tasks == 4
    assert issubclass(ringq.Empty, queue.Empty) and issubclass(ringq.Full, queue.Full)
