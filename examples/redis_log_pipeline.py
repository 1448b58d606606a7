"""Seed 001's log pipeline as two OS processes joined by a Redis stream, surviving a SIGKILL.

Stage 1 (``produce``): a ``ringq.Pipeline`` whose 3 workers format the log lines of
"web-1".."web-3" and whose sink is the stream ``--stream`` (maxlen 100: backpressure,
like the seed's buffer of 100); then it closes the stream. Stage 2 (``store``): a
``ringq.Pipeline`` whose source is that stream: 5 workers parse and enrich each line,
one stores it in SQLite and then acknowledges it. ``demo`` runs both as separate
processes, kills stage 2 with SIGKILL mid-run, restarts it, and checks that every log
line is stored exactly once.

Why nothing is lost or stored twice:

* stage 2 acks a line only after its SQLite transaction committed, so a kill before
  the ack (lines still in the pipeline's in-memory queues included) leaves it pending
  in Redis, and the restarted process (same consumer name, ``store-1``) re-reads it
  first: at-least-once;
* the store is idempotent: ``request_id`` is the primary key and the insert is
  ``INSERT OR IGNORE``, so a line delivered twice is stored once (the de-duplication).

Run it (needs redis-py and a Redis 6.2+ server)::

    pip install 'ringq[redis]'
    python examples/redis_log_pipeline.py demo --url redis://127.0.0.1:6379/0
"""
from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Iterator, List, Optional

import redis

import ringq
from ringq.redis import Message, StreamQueue

PRODUCERS = 3
CONSUMERS = 5
BUFFER = 100            # the seed's bounded buffer: at most 100 lines undelivered
GROUP = "store"
CONSUMER = "store-1"    # stable across restarts: the restarted stage 2 resumes its own pending
STAGE_QUEUE = 20     # bound of the in-memory queues between stage 2's steps


def queue(url: str, stream: str, **kwargs: object) -> StreamQueue:
    # claim_idle: a line is taken over by another consumer after 5 s unacknowledged.
    return StreamQueue(redis.Redis.from_url(url), stream, GROUP, CONSUMER, claim_idle=5.0, **kwargs)


# -- stage 1: web servers producing log lines ----------------------------------------------
def log_line(request: tuple) -> str:
    producer, i = request
    level = "ERROR" if i % 10 == 0 else "INFO"
    timestamp = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    return f"{timestamp} {level} {producer}-{i} Request processed by {producer}"


def requests(lines_per_producer: int) -> Iterator[tuple]:
    for i in range(lines_per_producer):
        for n in range(1, PRODUCERS + 1):
            yield f"web-{n}", i


def produce(url: str, stream: str, lines_per_producer: int) -> None:
    sink = queue(url, stream, maxlen=BUFFER)  # put waits while 100 lines are undelivered
    with ringq.Pipeline(requests(lines_per_producer)) as p:
        p.stage(log_line, workers=PRODUCERS, maxsize=BUFFER)
        count = p.run(sink)  # sink.put(line) for every line, then sink.shutdown()
    sink.close_stream()  # like close(ch): stage 2 ends once everything is stored and acked
    print(f"produce: {count} lines put, stream closed", flush=True)


# -- stage 2: parse, enrich, store ---------------------------------------------------------
SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (request_id TEXT PRIMARY KEY, ts TEXT, level TEXT,
                                 message TEXT, is_error INTEGER);
CREATE TABLE IF NOT EXISTS deliveries (request_id TEXT);   -- every store attempt
"""


def store(url: str, stream: str, db: str, work_seconds: float) -> None:
    with sqlite3.connect(db) as conn:
        conn.executescript(SCHEMA)
    source = queue(url, stream)
    local = threading.local()

    def parse(msg: Message) -> tuple:
        time.sleep(work_seconds)  # the seed's slow parse-and-enrich
        ts, level, request_id, message = msg.data.split(" ", 3)
        return msg, (request_id, ts, level, message, int(level == "ERROR"))

    def save(parsed: tuple) -> str:
        msg, row = parsed
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(db, timeout=60)
            conn.execute("PRAGMA synchronous=OFF")  # a killed process loses nothing committed
        with conn:  # committed before the ack, or not at all
            conn.execute("INSERT OR IGNORE INTO logs VALUES (?, ?, ?, ?, ?)", row)
            conn.execute("INSERT INTO deliveries VALUES (?)", (row[0],))
        msg.ack()  # only now: a kill before this line delivers the line again
        return row[0]

    with ringq.Pipeline(source) as p:  # iterates the stream until it is closed and drained
        p.stage(parse, workers=CONSUMERS, maxsize=STAGE_QUEUE)
        p.stage(save, workers=1, maxsize=STAGE_QUEUE)
        count = p.run()
    print(f"store: done, {count} lines handled, {source.stats()}", flush=True)


# -- demo: both stages as processes, stage 2 killed and restarted ---------------------------
def stored(db: str, table: str = "logs") -> int:
    try:
        with sqlite3.connect(db, timeout=60) as conn:
            return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # the table does not exist yet


def demo(url: str, lines_per_producer: int, work_seconds: float, timeout: float) -> int:
    stream = f"logs-{uuid.uuid4().hex[:8]}"
    total = PRODUCERS * lines_per_producer
    tmp = tempfile.mkdtemp(prefix="ringq-logs-")
    db = os.path.join(tmp, "logs.sqlite")
    me = [sys.executable, os.path.abspath(__file__)]
    common = ["--url", url, "--stream", stream]

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen(me + list(args) + common)

    deadline = time.monotonic() + timeout
    producer = start("produce", "--lines", str(lines_per_producer))
    storer = start("store", "--db", db, "--work", str(work_seconds))
    while stored(db) < total // 4:
        if time.monotonic() > deadline or storer.poll() is not None:
            print("demo: stage 2 ended or hung before a quarter was stored", flush=True)
            producer.kill()
            storer.kill()
            return 1
        time.sleep(0.005)
    storer.send_signal(signal.SIGKILL)
    storer.wait()
    at_kill = stored(db)
    print(f"demo: killed stage 2 with SIGKILL at {at_kill}/{total} lines stored", flush=True)
    storer = start("store", "--db", db, "--work", str(work_seconds))
    codes = []
    for proc in (producer, storer):
        try:
            codes.append(proc.wait(max(deadline - time.monotonic(), 1.0)))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    client = redis.Redis.from_url(url)
    pending = client.xpending(stream, GROUP)["pending"]
    dead = client.xlen(f"{stream}:dead")
    with sqlite3.connect(db) as conn:
        ids = {row[0] for row in conn.execute("SELECT request_id FROM logs")}
    expected = {f"web-{n}-{i}" for n in range(1, PRODUCERS + 1) for i in range(lines_per_producer)}
    attempts = stored(db, "deliveries")
    client.delete(stream, f"{stream}:closed", f"{stream}:dead")
    ok = codes == [0, 0] and ids == expected and stored(db) == total and pending == 0 and dead == 0
    print(f"demo: exit codes {codes}; {len(ids)}/{total} lines stored exactly once "
          f"({attempts - total} redelivered duplicates ignored); pending {pending}; "
          f"dead-lettered {dead}; killed mid-run: {at_kill < total}; {'OK' if ok else 'FAILED'}",
          flush=True)
    return 0 if ok and at_kill < total else 1


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["produce", "store", "demo"])
    parser.add_argument("--url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--stream", default="logs")
    parser.add_argument("--lines", type=int, default=1000, help="lines per producer (3 producers)")
    parser.add_argument("--db", default="logs.sqlite")
    parser.add_argument("--work", type=float, default=0.001, help="seconds of work per line in stage 2")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if args.mode == "produce":
        produce(args.url, args.stream, args.lines)
    elif args.mode == "store":
        store(args.url, args.stream, args.db, args.work)
    else:
        return demo(args.url, args.lines, args.work, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
