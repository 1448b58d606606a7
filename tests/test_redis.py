"""ringq.redis.StreamQueue against a real redis-server (started here; never a mock).

Skipped, with the reason, only when no server can be had: no ``redis-server`` binary
or no redis-py. The module-scoped server is shared; every test uses fresh keys.
"""
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

import _redis_server
from _helpers import BLOCK_DELAY, LONG, Call

_reason = _redis_server.skip_reason()
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")

if _reason is None:
    import redis

    import ringq
    from ringq.redis import ConnectionLost, Message, StreamQueue

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "redis_log_pipeline.py")


def child_env():
    # Children import the installed ringq, like the rest of the suite (see _helpers.child_env).
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with _redis_server.RedisServer(tmp_path_factory.mktemp("redis")) as srv:
        yield srv


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def client(server, request):
    # redis-py 5 speaks RESP2 by default, redis-py 8 RESP3: replies differ in shape.
    c = server.client(protocol=request.param)
    yield c
    c.close()


@pytest.fixture
def stream():
    return f"s-{uuid.uuid4().hex[:12]}"


def make(client, stream, consumer="c1", **kwargs):
    kwargs.setdefault("block_slice", 0.1)
    return StreamQueue(client, stream, "g", consumer, **kwargs)


# -- module and basics -------------------------------------------------------------------
def test_import_ringq_does_not_import_redis():
    code = "import sys, ringq; assert 'ringq.redis' not in sys.modules and 'redis' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=child_env(), timeout=LONG * 3)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_inside_ringq_redis_import_redis_is_redis_py():
    import ringq.redis as rr

    assert rr.ConnectionLost.__mro__[1] is redis.exceptions.ConnectionError
    assert sys.modules["redis"] is redis and sys.modules["redis"] is not rr
    assert hasattr(sys.modules["redis"], "Redis")


def test_put_get_ack_roundtrip(client, stream):
    q = make(client, stream)
    q.put({"line": "GET / 200", "n": 1})
    q.put_many(["a", 2, None, [1, 2]])
    assert q.qsize() == 5
    msg = q.get(timeout=LONG)
    assert isinstance(msg, Message)
    assert msg.data == {"line": "GET / 200", "n": 1}
    assert msg.deliveries == 1 and isinstance(msg.id, str) and "-" in msg.id
    batch = q.get_many(10, timeout=LONG)
    assert [m.data for m in batch] == ["a", 2, None, [1, 2]]
    assert q.qsize() == 0 and q.pending() == 5
    assert msg.ack() is True
    assert msg.ack() is False  # already acked
    assert q.ack_many(batch) == 4
    assert q.pending() == 0
    assert q.stats()["acked"] == 5


def test_decode_responses_client(server, stream):
    c = server.client(decode_responses=True)
    try:
        q = make(c, stream)
        q.put("héllo")
        msg = q.get(timeout=LONG)
        assert msg.data == "héllo" and msg.ack()
    finally:
        c.close()


def test_entries_written_by_others_come_as_fields(client, stream):
    q = make(client, stream)
    client.xadd(stream, {"k": "v"})
    msg = q.get(timeout=LONG)
    assert msg.data == {b"k": b"v"}


def test_bad_arguments(client, stream):
    q = make(client, stream)
    with pytest.raises(ValueError):
        q.get_many(0)
    with pytest.raises(TypeError):
        q.get_many(1.5)
    for bad in (-1, -0.001, math.nan):
        with pytest.raises(ValueError):
            q.get(timeout=bad)
        with pytest.raises(ValueError):
            q.put(1, timeout=bad)
    with pytest.raises(TypeError):
        q.get(timeout="1")
    with pytest.raises(ValueError):
        make(client, stream, maxlen=0)
    with pytest.raises(ValueError):
        make(client, stream, claim_idle=0)
    assert q.qsize() == 0  # the failed put(timeout=-1) put nothing


# -- delivery ---------------------------------------------------------------------------
def test_two_consumers_in_one_group_split_the_entries(client, stream):
    a, b = make(client, stream, "a"), make(client, stream, "b")
    a.put_many(range(100))
    seen = {"a": [], "b": []}
    for _ in range(8):  # 8 rounds of 2 x 7 = 112 >= 100
        for name, q in (("a", a), ("b", b)):
            try:
                batch = q.get_many(7, block=False)
            except ringq.Empty:
                continue
            seen[name] += [m.data for m in batch]
            q.ack_many(batch)
    assert seen["a"] and seen["b"]
    assert not set(seen["a"]) & set(seen["b"])
    assert sorted(seen["a"] + seen["b"]) == list(range(100))
    with pytest.raises(ringq.Empty):
        a.get(block=False)
    with pytest.raises(ringq.Empty):
        b.get(timeout=0.05)


def _consumer_killed_mid_batch(server, stream, consumer, n):
    """A real process reads *n* entries, never acks them, and dies by SIGKILL."""
    code = textwrap.dedent(f"""
        import os, signal, redis
        from ringq.redis import StreamQueue
        q = StreamQueue(redis.Redis(port={server.port}), {stream!r}, "g", {consumer!r})
        got = q.get_many({n}, timeout=10)
        print(len(got), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=child_env(), timeout=LONG * 3)
    assert out.returncode == -signal.SIGKILL, out.stderr
    assert out.stdout.strip() == str(n)


def test_redelivery_to_another_consumer_after_a_kill(server, client, stream):
    make(client, stream).put_many(range(10))
    _consumer_killed_mid_batch(server, stream, "doomed", 4)
    survivor = make(client, stream, "survivor", claim_idle=0.3)
    first = survivor.get_many(100, timeout=LONG)
    # The 6 never-delivered entries come at once; the 4 of the dead consumer are not idle yet.
    assert sorted(m.data for m in first) == [4, 5, 6, 7, 8, 9]
    survivor.ack_many(first)
    t0 = time.monotonic()
    claimed = survivor.get_many(100, timeout=LONG)
    assert time.monotonic() - t0 < LONG
    assert sorted(m.data for m in claimed) == [0, 1, 2, 3]
    assert all(m.deliveries == 2 for m in claimed)
    survivor.ack_many(claimed)
    assert survivor.pending() == 0
    assert survivor.stats()["claimed"] == 4


def test_restarted_consumer_rereads_its_own_pending_first(server, client, stream):
    make(client, stream).put_many(range(6))
    _consumer_killed_mid_batch(server, stream, "worker-1", 3)
    # Same name, default claim_idle of 60 s: no janitor could hand these over in time.
    again = make(client, stream, "worker-1")
    got = again.get_many(100, timeout=LONG)
    assert [m.data for m in got] == [0, 1, 2]
    assert [m.deliveries for m in got] == [2, 2, 2]
    assert again.stats()["redelivered"] == 3
    fresh = again.get_many(100, timeout=LONG)
    assert [m.data for m in fresh] == [3, 4, 5] and [m.deliveries for m in fresh] == [1, 1, 1]


def test_nack_redelivers_and_dead_letters_after_max_deliveries(client, stream):
    q = make(client, stream, claim_idle=0.2, claim_interval=0.05, max_deliveries=3)
    q.put("poison")
    q.put("fine")
    deliveries = []
    for _ in range(3):
        msg = q.get(timeout=LONG)
        assert msg.data == "poison"  # oldest first, then the janitor hands it back
        deliveries.append(msg.deliveries)
        msg.nack()
    assert deliveries == [1, 2, 3]
    # A 4th delivery would exceed max_deliveries: the janitor moves it to the dead letters.
    rest = [q.get(timeout=LONG)]
    assert rest[0].data == "fine" and rest[0].ack()
    with pytest.raises(ringq.Empty):
        q.get(timeout=1.0)
    dead = client.xrange(q.dead_letter)
    assert len(dead) == 1
    fields = dead[0][1]
    assert fields[b"d"] == b'"poison"'
    assert fields[b"ringq:deliveries"] == b"3"
    assert fields[b"ringq:stream"] == stream.encode()
    assert q.pending() == 0 and q.stats()["dead_lettered"] == 1


def test_own_pending_over_max_deliveries_is_dead_lettered_on_restart(server, client, stream):
    make(client, stream).put("crashes-its-consumer")
    _consumer_killed_mid_batch(server, stream, "w", 1)   # delivery 1
    client.xreadgroup("g", "w", {stream: "0"})            # delivery 2, as a crash loop would
    q = make(client, stream, "w", max_deliveries=2)
    with pytest.raises(ringq.Empty):
        q.get(timeout=0.2)
    assert len(client.xrange(q.dead_letter)) == 1 and q.pending() == 0


def test_deleted_pending_entries_are_dropped_and_counted(client, stream):
    q = make(client, stream, claim_idle=0.05, claim_interval=0.05)
    q.put_many(["x", "y"])
    got = q.get_many(2, timeout=LONG)
    client.xdel(stream, got[0].id)
    time.sleep(0.1)
    again = q.get_many(10, timeout=LONG)
    assert [m.data for m in again] == ["y"]
    assert q.stats()["deleted_while_pending"] == 1
    assert q.pending() == 1


# -- maxlen backpressure --------------------------------------------------------------------
def test_maxlen_backpressure(client, stream):
    producer = make(client, stream, "p", maxlen=3)
    consumer = make(client, stream, "c")
    producer.put_many([1, 2, 3])
    assert producer.full()
    with pytest.raises(ringq.Full):
        producer.put_nowait(4)
    t0 = time.monotonic()
    with pytest.raises(ringq.Full):
        producer.put(4, timeout=0.2)
    assert time.monotonic() - t0 >= 0.2
    call = Call(producer.put, 4, timeout=LONG * 6)
    time.sleep(BLOCK_DELAY * 2)
    assert not call.returned.is_set(), "put returned while 3 entries were undelivered"
    assert client.xlen(stream) == 3
    msg = consumer.get(timeout=LONG)  # delivered (even unacked) frees room
    assert msg.data == 1
    call.value()
    assert client.xlen(stream) == 4 and producer.qsize() == 3


def test_maxlen_put_many_all_or_nothing_and_partial(client, stream):
    producer = make(client, stream, "p", maxlen=4)
    consumer = make(client, stream, "c")
    producer.put_many([1, 2])
    with pytest.raises(ringq.Full):
        producer.put_many([3, 4, 5], block=False)
    assert client.xlen(stream) == 2  # nothing was put
    with pytest.raises(ringq.Full):
        producer.put_many([3, 4, 5], timeout=0.1)
    assert client.xlen(stream) == 4  # the items that fitted stay, in order
    assert [m.data for m in consumer.get_many(10, timeout=LONG)] == [1, 2, 3, 4]


def test_maxlen_bound_holds_when_lag_is_unknown(client, stream):
    producer = make(client, stream, "p", maxlen=3)
    consumer = make(client, stream, "c")
    producer.put_many([1, 2, 3])
    assert consumer.get(timeout=LONG).data == 1
    # XDEL of an undelivered entry after the group has read some makes XINFO GROUPS
    # report no lag (Redis 7.0): the bound then counts the undelivered entries itself.
    last = client.xrange(stream)[-1][0]
    client.xdel(stream, last)
    if client.info("server")["redis_version"].startswith("7.0."):
        assert client.xinfo_groups(stream)[0]["lag"] is None
    producer.put_many([4, 5])
    with pytest.raises(ringq.Full):
        producer.put_nowait(6)
    assert producer.qsize() == 3
    assert [m.data for m in consumer.get_many(10, timeout=LONG)] == [2, 4, 5]


def test_maxlen_is_exact_with_racing_producers(client, stream):
    producers = [make(client, stream, f"p{i}", maxlen=5) for i in range(4)]
    errors = []

    def fill(q):
        for i in range(10):
            try:
                q.put(i, block=False)
            except ringq.Full:
                pass
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

    threads = [threading.Thread(target=fill, args=(q,)) for q in producers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LONG)
    assert not errors
    assert client.xlen(stream) == 5


# -- timeouts, socket_timeout, shutdown, close ---------------------------------------------
def test_get_timeout_is_empty_after_the_timeout(client, stream):
    q = make(client, stream)
    t0 = time.monotonic()
    with pytest.raises(ringq.Empty):
        q.get(timeout=0.3)
    assert 0.3 <= time.monotonic() - t0 < LONG


def test_blocking_longer_than_socket_timeout(server, stream):
    # redis-py issue 3138: a BLOCK at or beyond socket_timeout used to read as a dead socket.
    # (The server ends a BLOCK on its own timer, 100 ms at the default hz 10: a socket
    # timeout much below 0.5 s leaves too little room whatever the client does.)
    c = server.client(socket_timeout=1.0)
    try:
        q = StreamQueue(c, stream, "g", "c", block_slice=5.0)
        t0 = time.monotonic()
        with pytest.raises(ringq.Empty):
            q.get(timeout=2.2)
        assert time.monotonic() - t0 >= 2.2
        call = Call(q.get, timeout=LONG * 6)
        time.sleep(1.2)
        assert not call.returned.is_set()
        q.put("late")
        assert call.value().data == "late"
    finally:
        c.close()


def test_shutdown_wakes_a_blocked_get_and_keeps_pending(client, stream):
    q = make(client, stream)
    q.put("x")
    held = q.get(timeout=LONG)
    call = Call(q.get)
    time.sleep(BLOCK_DELAY * 2)
    assert not call.returned.is_set()
    q.shutdown()
    assert call.returned.wait(LONG)
    assert isinstance(call.exc, ringq.ShutDown)
    assert q.is_shutdown
    with pytest.raises(ringq.ShutDown):
        q.get(block=False)
    with pytest.raises(ringq.ShutDown):
        q.put("y")
    assert q.pending() == 1  # unacked: still pending, for another consumer
    other = make(client, stream, "c2", claim_idle=0.1)
    time.sleep(0.15)
    assert other.get(timeout=LONG).id == held.id
    assert held.ack()  # acks still work after shutdown


def test_iteration_and_context_manager_end_at_shutdown(client, stream):
    with make(client, stream) as q:
        q.put_many([1, 2, 3])
        got = []
        for msg in q:
            got.append(msg.data)
            msg.ack()
            if len(got) == 3:
                q.shutdown()
    assert got == [1, 2, 3]
    assert iter(q) is q
    with make(client, stream) as q2:
        pass
    assert q2.is_shutdown


def test_close_stream_ends_every_consumer_once_drained(client, stream):
    producer = make(client, stream, "p")
    consumers = [make(client, stream, f"c{i}") for i in range(2)]
    producer.put_many(range(20))
    results = [[] for _ in consumers]

    def drain(q, out):
        for msg in q:
            out.append(msg.data)
            msg.ack()

    calls = [Call(drain, q, out) for q, out in zip(consumers, results)]
    time.sleep(BLOCK_DELAY * 2)
    assert not any(c.returned.is_set() for c in calls), "iteration ended before the stream was closed"
    producer.close_stream()
    for c in calls:
        c.value()
    assert sorted(results[0] + results[1]) == list(range(20))
    with pytest.raises(ringq.ShutDown):
        producer.put(99)
    producer.join()  # nothing undelivered, nothing pending


def test_join_waits_for_acks(client, stream):
    q = make(client, stream)
    q.put_many([1, 2])
    batch = q.get_many(2, timeout=LONG)
    call = Call(q.join)
    time.sleep(BLOCK_DELAY)
    assert not call.returned.is_set()
    q.ack_many(batch)
    call.value()


def test_trim_keeps_undelivered_and_pending(client, stream):
    q = make(client, stream)
    q.put_many(range(6))
    done = q.get_many(2, timeout=LONG)
    q.ack_many(done)
    q.get_many(2, timeout=LONG)  # pending, not acked
    assert q.trim() == 2
    assert [q._decode(f) for _, f in client.xrange(stream)] == [2, 3, 4, 5]


# -- a server crash, with AOF on --------------------------------------------------------------
def test_unacked_entries_survive_a_server_crash_with_aof(tmp_path, stream):
    with _redis_server.RedisServer(tmp_path / "aof", aof=True) as srv:
        # No client-side retries: redis-py 8 retries a dead connection up to 10 times
        # with backoff (seconds) before the error reaches StreamQueue.
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        c = srv.client(socket_timeout=2.0, retry=Retry(NoBackoff(), 0))
        q = StreamQueue(c, stream, "g", "worker", block_slice=0.1)
        q.put_many(["a", "b", "c", "d", "e"])
        got = q.get_many(3, timeout=LONG)
        assert got[0].ack()
        srv.stop(kill=True)  # SIGKILL: only the fsync'd AOF survives
        with pytest.raises(ConnectionLost) as info:
            q.get(timeout=1)
        assert isinstance(info.value, redis.exceptions.ConnectionError)
        assert stream in str(info.value) and "worker" in str(info.value)
        srv.start()
        again = q.get_many(10, timeout=LONG)
        assert [m.data for m in again] == ["b", "c"]  # this consumer's own pending, first
        assert [m.deliveries for m in again] == [2, 2]
        rest = q.get_many(10, timeout=LONG)
        assert [m.data for m in rest] == ["d", "e"]
        q.ack_many(again + rest)
        assert q.pending() == 0 and q.qsize() == 0
        c.close()


# -- the example: seed 001's log pipeline across two processes, stage 2 SIGKILLed -----------
def test_log_pipeline_example_survives_a_sigkill(server):
    out = subprocess.run([sys.executable, EXAMPLE, "demo", "--url", server.url, "--lines", "300",
                          "--timeout", "60"], capture_output=True, text=True, env=child_env(), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "900/900 lines stored exactly once" in out.stdout
    assert "killed mid-run: True" in out.stdout and "OK" in out.stdout


# -- ringq.Pipeline: a StreamQueue as a sink (process 1) and as a source (process 2) ----------
def test_stream_queue_as_pipeline_sink_then_source(client, stream):
    sink = make(client, stream, "producer")
    with ringq.Pipeline(range(50)) as p:
        p.stage(lambda i: {"n": i, "sq": i * i}, workers=2, maxsize=4)
        assert p.run(sink) == 50  # every result was sink.put(); then sink.shutdown()
    assert sink.is_shutdown
    sink.close_stream()  # the source pipeline below ends once all 50 are acked
    stored = {}

    def store(msg):
        stored[msg.data["n"]] = msg.data["sq"]  # idempotent: keyed by n
        msg.ack()  # after the store: a crash before it delivers the entry again
        return msg.id

    source = make(client, stream, "consumer")
    with ringq.Pipeline(source) as p2:
        p2.stage(store, workers=3, maxsize=4)
        ids = list(p2)
    assert stored == {i: i * i for i in range(50)}
    assert len(set(ids)) == 50
    assert source.pending() == 0 and source.qsize() == 0


def test_pipeline_error_shuts_the_source_down_and_keeps_the_entry_pending(client, stream):
    q = make(client, stream, "consumer")
    q.put_many(range(10))

    def fail_on_3(msg):
        if msg.data == 3:
            raise RuntimeError("boom")
        msg.ack()
        return msg.data

    with pytest.raises(RuntimeError, match="boom"):
        with ringq.Pipeline(q) as p:
            p.stage(fail_on_3, maxsize=1)
            list(p)
    assert q.is_shutdown  # the pipeline stopped its source
    other = make(client, stream, "other", claim_idle=0.05, claim_interval=0.05)
    time.sleep(0.1)
    rest = []
    while True:
        try:
            batch = other.get_many(100, timeout=0.5)
        except ringq.Empty:
            break
        rest += [m.data for m in batch]
        other.ack_many(batch)
    assert 3 in rest  # the failed entry was not lost: another consumer got it
    assert other.pending() == 0


# -- connection error messages (issue 17, item 20) -------------------------------------------
def _no_retry_client(port, **kwargs):
    # redis-py 8 retries a failed call up to 10 times with backoff: the error would come
    # seconds later. The message is what is tested here, not redis-py's retries.
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2.0, retry=Retry(NoBackoff(), 0),
                       **kwargs)


def test_no_server_says_could_not_connect_not_lost(stream):
    port = _redis_server._free_port()  # nothing listens there
    c = _no_retry_client(port)
    try:
        with pytest.raises(ConnectionLost) as info:
            StreamQueue(c, stream, "g", "worker")
    finally:
        c.close()
    message = str(info.value)
    assert message.startswith(f"could not connect to Redis at 127.0.0.1:{port}"), message
    assert "lost the connection" not in message
    assert stream in message and "worker" in message
    assert "is the server running" in message  # names the fix
    assert message.endswith("."), message  # a whole sentence
    assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)


def test_a_lost_connection_says_so_in_whole_sentences(tmp_path, stream):
    with _redis_server.RedisServer(tmp_path / "lost") as srv:
        c = _no_retry_client(srv.port)
        q = StreamQueue(c, stream, "g", "worker", block_slice=0.1)
        q.put("a")
        srv.stop(kill=True)
        with pytest.raises(ConnectionLost) as info:
            q.get(timeout=1)
        c.close()
    message = str(info.value)
    assert message.startswith("lost the connection to Redis"), message
    assert stream in message and "'worker'" in message
    # Once cut off mid-sentence: "... the next get() re-reads this consumer's own".
    assert "the next get() re-reads this consumer's own pending entries first" in message, message
    assert message.endswith("."), message


# -- the janitor's pace (issue 17, item 18) ---------------------------------------------------
def _command_calls(client):
    """calls per command so far, from INFO commandstats (counted by the server itself)."""
    return {name[len("cmdstat_"):]: int(stat["calls"])
            for name, stat in client.info("commandstats").items() if name.startswith("cmdstat_")}


def _delta(before, after, *names):
    return {name: after.get(name, 0) - before.get(name, 0) for name in names}


LIVE_PENDING = 2_000  # pending at a live consumer: 200 XAUTOCLAIM pages of 10 for a get of 1


def test_get_on_an_empty_stream_blocks_instead_of_scanning_a_live_pel(client, stream):
    # 20,000 entries pending at a live consumer once made get(timeout=2) send 2,000
    # XAUTOCLAIM and 2,002 XREADGROUP: every page that claimed nothing restarted the scan
    # at once, and its non-blocking XREADGROUP with it.
    live = make(client, stream, "live")
    live.put_many(range(LIVE_PENDING))
    assert len(live.get_many(LIVE_PENDING, timeout=LONG)) == LIVE_PENDING  # pending, fresh
    q = make(client, stream, "idle-reader")  # claim_idle 60 s: none of them is stale
    before = _command_calls(client)
    start = time.monotonic()
    with pytest.raises(ringq.Empty):
        q.get(timeout=1.0)
    elapsed = time.monotonic() - start
    calls = _delta(before, _command_calls(client), "xautoclaim", "xpending", "xreadgroup")
    assert elapsed >= 1.0
    assert calls["xautoclaim"] + calls["xpending"] <= 2, calls  # one janitor tick
    # The own-PEL re-read, then blocking reads of block_slice (0.1 s) until the timeout.
    assert calls["xreadgroup"] <= 1 + 1.0 / 0.1 + 3, calls
    assert q.stats()["claimed"] == 0


def test_a_stale_entry_behind_a_long_live_pel_is_claimed_in_one_tick(client, stream):
    live = make(client, stream, "live")
    live.put_many(range(LIVE_PENDING))
    got = live.get_many(LIVE_PENDING, timeout=LONG)
    # The last entry of the PEL goes stale (as if its consumer had stalled on it).
    client.xclaim(stream, "g", "live", 0, [got[-1].id], idle=3_600_000, justid=True)
    q = make(client, stream, "janitor")
    before = _command_calls(client)
    msg = q.get(timeout=LONG)
    calls = _delta(before, _command_calls(client), "xautoclaim", "xpending", "xreadgroup")
    assert msg.id == got[-1].id and msg.data == LIVE_PENDING - 1 and msg.deliveries == 2
    assert calls["xautoclaim"] <= 1, calls  # not 200 pages to reach it
    assert q.stats()["claimed"] == 1
    # Nothing else is stale: the next get blocks, and the janitor waits for its next tick.
    before = _command_calls(client)
    with pytest.raises(ringq.Empty):
        q.get(timeout=0.5)
    calls = _delta(before, _command_calls(client), "xautoclaim", "xpending", "xreadgroup")
    assert calls["xautoclaim"] + calls["xpending"] <= 2, calls
    assert calls["xreadgroup"] <= 0.5 / 0.1 + 3, calls


# -- an item over the server's proto-max-bulk-len (issue 17, item 19) -------------------------
MIB = 1024 * 1024


@pytest.fixture
def small_bulk_server(tmp_path):
    """A server whose proto-max-bulk-len is 1 MiB (the least Redis accepts)."""
    with _redis_server.RedisServer(tmp_path / "bulk") as srv:
        admin = srv.client()
        admin.config_set("proto-max-bulk-len", MIB)
        admin.close()
        yield srv


@pytest.mark.parametrize("maxlen", [None, 100], ids=["unbounded", "maxlen"])
def test_an_item_over_proto_max_bulk_len_raises_at_once_and_puts_nothing(small_bulk_server, stream, maxlen):
    # It gave ConnectionLost after ~4.5 s of redis-py's retries: the server drops the
    # connection of a client that sends a longer bulk string, so a supervisor retrying on
    # ConnectionLost looped on the poison item. The client keeps redis-py's default retries.
    c = small_bulk_server.client()
    q = StreamQueue(c, stream, "g", "w", maxlen=maxlen, block_slice=0.1)
    big = "é" * (MIB // 2 + 8)  # 2 bytes each in UTF-8: over the limit in bytes, not in chars
    start = time.monotonic()
    with pytest.raises(ringq.redis.ItemTooLarge) as info:
        q.put(big)
    assert time.monotonic() - start < 1.0
    err = info.value
    assert isinstance(err, ValueError) and not isinstance(err, redis.exceptions.ConnectionError)
    assert err.limit == MIB and err.size == len(q._dumps(big).encode()) and err.index == 0
    message = str(err)
    assert "proto-max-bulk-len" in message and f"{MIB:,} bytes" in message and f"{err.size:,}" in message
    assert stream in message and "Nothing was put" in message
    assert "CONFIG SET proto-max-bulk-len" in message  # names the fix
    with pytest.raises(ringq.redis.ItemTooLarge) as info:
        q.put_many(["small", big, "small"])
    assert info.value.index == 1
    assert c.xlen(stream) == 0  # all or nothing: the small ones were not put either
    q.put_many(["ok", "x" * (MIB - 100)])  # under the limit: fine, on the same connection
    assert [m.data for m in q.get_many(5, timeout=LONG)] == ["ok", "x" * (MIB - 100)]
    c.close()


def test_without_config_get_the_servers_refusal_is_still_item_too_large(small_bulk_server, stream):
    # A user whose ACL denies CONFIG: the limit cannot be read, so Redis's default
    # (512 MiB) is assumed; the server's own refusal is then mapped, when redis-py gets it.
    admin = small_bulk_server.client()
    admin.acl_setuser("app", enabled=True, nopass=True, keys=["*"], channels=["*"],
                      commands=["+@all", "-config"])
    admin.close()
    c = _no_retry_client(small_bulk_server.port, username="app")
    with pytest.raises(redis.exceptions.NoPermissionError):
        c.config_get("proto-max-bulk-len")
    q = StreamQueue(c, stream, "g", "w", block_slice=0.1)
    with pytest.raises((ringq.redis.ItemTooLarge, ConnectionLost)) as info:
        q.put("x" * (MIB + 10))
    message = str(info.value)
    assert "proto-max-bulk-len" in message, message  # either way, the message names the cause
    assert c.xlen(stream) == 0
    c.close()
