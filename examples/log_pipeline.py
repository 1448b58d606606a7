"""Seed 001's log pipeline: 3 producers and 5 consumers over a queue of 100.

Producers put log entries (blocking while the queue is full: backpressure). When
all three are done, the queue is shut down; the consumers drain what is left and
their ``for entry in q`` loops end. Nothing is lost, no thread is left behind.

Several producers share one queue, so none of them may shut it down on the others.
Each registers with ``q.producer()`` before any thread starts; the queue shuts itself
down when the last registered producer leaves (Go's ``producerWg.Wait(); close(ch)``,
without the extra goroutine). A producer that fails passes its exception on: the
consumers' loops then end with ShutDown chained to it.

Run: python examples/log_pipeline.py
"""
from __future__ import annotations

import threading
import time
from typing import Dict, List, NamedTuple

import ringq


class LogEntry(NamedTuple):
    timestamp: float
    level: str
    message: str
    request_id: str


def produce(q: ringq.Queue[LogEntry], registration: ringq.Producer, producer_id: str, count: int) -> None:
    with registration:  # the last producer to leave shuts the queue down
        for i in range(count):
            level = "ERROR" if i % 10 == 0 else "INFO"
            q.put(LogEntry(time.time(), level, f"request processed by {producer_id}", f"{producer_id}-{i}"))


def consume(q: ringq.Queue[LogEntry], processed: List[str], work_seconds: float) -> None:
    for entry in q:  # ends once the queue is shut down and drained
        time.sleep(work_seconds)  # parse, enrich, store
        processed.append(entry.request_id)


def main(per_producer: int = 500, work_seconds: float = 0.0005) -> Dict[str, int]:
    q: ringq.Queue[LogEntry] = ringq.Queue(maxsize=100)
    processed: Dict[str, List[str]] = {f"worker-{c}": [] for c in range(5)}
    consumers = [threading.Thread(target=consume, args=(q, processed[name], work_seconds))
                 for name in processed]
    # Register all three before any starts, so the first to finish cannot be the last.
    producers = [threading.Thread(target=produce, args=(q, q.producer(), f"web-{p}", per_producer))
                 for p in range(3)]
    for thread in consumers + producers:
        thread.start()
    for thread in producers:
        thread.join()
    print("All producers done, draining...")
    for thread in consumers:
        thread.join()  # they drained everything, then their loops ended
    assert q.is_shutdown
    counts = {name: len(ids) for name, ids in processed.items()}
    for name, count in counts.items():
        print(f"Consumer {name} processed {count} entries")
    everything = [request_id for ids in processed.values() for request_id in ids]
    assert len(everything) == len(set(everything)) == 3 * per_producer, "an entry was lost or duplicated"
    print(f"All consumers done: {len(everything)} entries")
    return counts


if __name__ == "__main__":
    main()
