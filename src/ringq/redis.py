"""A queue over a Redis stream and consumer group, with ringq.Queue's API: at-least-once.

Install with ``pip install 'ringq[redis]'`` (it pulls in redis-py). ``import ringq``
never imports this module, and nothing else in ringq needs redis-py.

    import redis
    from ringq.redis import StreamQueue

    client = redis.Redis()
    q = StreamQueue(client, "logs", group="store", consumer="store-1", maxlen=10_000)
    q.put({"line": "GET / 200"})          # XADD; waits while 10,000 entries are undelivered
    q.put_many(lines)                     # one Lua call (XADD each) per 1,000 entries
    for msg in q:                         # XREADGROUP; ends at ShutDown
        store(msg.data)                   # must be idempotent: see "Delivery" below
        msg.ack()                         # XACK; without it the entry is delivered again

Delivery: at least once
-----------------------
An entry read by ``get`` stays in the group's pending list (PEL) until it is
acknowledged. If its consumer dies, stalls or calls ``nack()``, another consumer takes
it over and it is delivered again: a crash between "stored" and "acked" means the
handler runs twice for the same entry. So handlers must be idempotent: key the work
by ``msg.id`` (the same entry keeps its id on every delivery) or by a key inside the
data (a retried ``put`` after a lost connection may have added the entry twice, under
two ids). Nothing is ever dropped silently: an entry delivered ``max_deliveries``
times goes to the dead-letter stream (``"<stream>:dead"`` by default).

* On its first get a consumer re-reads its own pending entries (id ``0``), which a
  previous run under the same consumer name left unacknowledged, then new ones (``>``).
  It does so again after a connection error, as the reply of an XREADGROUP may be lost
  after Redis marked its entries delivered.
* A janitor, run inside ``get`` every ``claim_interval`` seconds, takes over entries
  that any consumer of the group has left unacknowledged for ``claim_idle`` seconds.
  A tick asks for the oldest such entry (XPENDING IDLE: one call, the server scans the
  whole PEL) and claims from there with XAUTOCLAIM, at most ``max_items`` entries. A
  tick that claimed something is followed by another at the next get (more may be
  stale); one that found nothing waits ``claim_interval``, so a get on an empty stream
  blocks however many live entries are pending. ``claim_idle`` must be longer than
  the slowest normal handler, or live consumers' entries are stolen and run twice.
  Ids that Redis 7 reports as deleted (trimmed or XDEL'd while pending: their data is
  gone) are logged, counted in ``stats()`` and dropped from the PEL by Redis itself.

Backpressure (``maxlen``)
-------------------------
``put`` waits (or raises ``Full``) while the stream holds ``maxlen`` entries that were
not yet delivered to the group. This is measured with the group's ``lag`` from
XINFO GROUPS, inside a Lua script that checks and adds in one atomic step, so the bound
is exact even with many producers. Lag is null on Redis 7.0 in some states (after
entries were deleted, or for a group created at an arbitrary id) and missing before
7.0; the script then counts the undelivered entries with XRANGE from the group's
last-delivered id, up to ``maxlen`` (O(maxlen), still exact). The stream is never
trimmed by ``put``: MAXLEN trimming would delete entries that are undelivered or
pending, which is the loss this class exists to prevent. Call ``trim()`` to delete
what every group has acknowledged. Redis gives no event when the lag falls, so a
waiting ``put`` polls, backing off from 1 ms to 50 ms.

Connection errors: raised, never retried here
---------------------------------------------
A lost connection raises ``ConnectionLost`` (a ``redis.exceptions.ConnectionError``)
naming the stream, group and consumer. StreamQueue does not retry, because a retry
hides an outage and an ``XADD`` retried after a lost reply adds the entry twice; the
caller (a supervisor, a pipeline stage) decides. redis-py's own ``retry=`` on the
client still applies: redis-py 8 retries a failed call up to 10 times with backoff by
default (redis-py 5 did not retry), so the error, and a ``get``'s return, can come
seconds after its timeout. No acknowledged or pending entry is lost by an error: an
ack that fails leaves the entry pending (delivered again later), a read whose reply
was lost leaves its entries in this consumer's PEL, and the next ``get`` re-reads them.

An item longer than the server's ``proto-max-bulk-len`` is refused by Redis with a
dropped connection, which no retry can fix: ``put`` raises ``ItemTooLarge`` (a
ValueError) for it before anything is sent (see ``_check_sizes``).

Timeouts: redis-py's ``socket_timeout`` (5 s by default in redis-py 8) must exceed a
blocking XREADGROUP's BLOCK time (redis-py issue 3138), so ``get`` blocks in slices of
at most ``block_slice`` seconds and at most half the socket timeout. That also bounds
how long a blocked ``get`` takes to notice ``shutdown()`` and to run the janitor. The
server ends a BLOCK on its own timer (every 100 ms at the default ``hz 10``), so keep
``socket_timeout`` at 0.5 s or more (or None) on a client used for blocking gets.

Redis Cluster: the dead-letter stream and the "closed" key are derived from the stream
name; put the stream name in a hash tag (``"{logs}"``) so they share its slot.
"""
from __future__ import annotations

import json
import logging
import math
import operator
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

# Absolute imports: "redis" is redis-py here, never this module (ringq.redis).
from redis.exceptions import ConnectionError as _RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as _RedisTimeoutError

from ._asyncfn import refuse_async
from ._errors import Empty, Full, ShutDown
from ._redis_scripts import BOUNDED_XADD as _BOUNDED_XADD
from ._redis_scripts import XADD_MANY as _XADD_MANY
from ._timeout import deadline as _deadline  # ringq.Queue's timeout checks and messages

__all__ = ["ConnectionLost", "ItemTooLarge", "Message", "StreamQueue"]

log = logging.getLogger("ringq.redis")

#: The entry field that holds the encoded item.
DATA_FIELD = "d"

# Entries per script call (one round trip) in put_many.
_PUT_CHUNK = 1000
# proto-max-bulk-len: the least value Redis accepts (CONFIG SET refuses less), so an item
# no longer than this is never checked; and Redis's default, assumed when CONFIG GET is
# refused (an ACL without +config, a managed service that renames CONFIG).
_MIN_BULK_LIMIT = 1024 * 1024
_DEFAULT_BULK_LIMIT = 512 * 1024 * 1024
# Backoff of a put waiting for room, and of join(): Redis has no event for "lag fell".
_POLL_MIN = 0.001
_POLL_MAX = 0.05

class ConnectionLost(_RedisConnectionError):
    """The connection to Redis failed during a StreamQueue call.

    A ``redis.exceptions.ConnectionError``, so existing handlers catch it. The original
    error is its ``__cause__``. Pending entries stay pending; see the module docstring.
    """


class ItemTooLarge(ValueError):
    """An item encodes to more bytes than the server takes in one argument (proto-max-bulk-len).

    Raised by ``put``/``put_many`` before anything is sent, so nothing was put. Not a
    connection error: retrying the same item can never succeed. ``size`` (bytes, or None
    when the server refused an argument of unknown size), ``limit`` (bytes, or None when
    unknown) and ``index`` (the item's position in the ``put_many`` call, or None).
    """

    def __init__(self, message: str, size: Optional[int] = None, limit: Optional[int] = None,
                 index: Optional[int] = None) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit
        self.index = index


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, (bytes, bytearray)) else str(value)


def _server_address(client: Any) -> str:
    """" at host:port" (or " at /unix/socket") of a redis-py client, for messages; "" if unknown."""
    try:
        kwargs = client.connection_pool.connection_kwargs
    except AttributeError:
        return ""
    if kwargs.get("path"):
        return f" at {kwargs['path']}"
    if kwargs.get("host") is not None and kwargs.get("port") is not None:
        return f" at {kwargs['host']}:{kwargs['port']}"
    return ""


def _positive(name: str, value: Any) -> float:
    seconds = float(value)
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"{name} must be a positive, finite number of seconds")
    return seconds


class Message:
    """One stream entry delivered to this consumer.

    ``id`` is the entry id (a str, e.g. ``"1700000000000-0"``), stable across
    redeliveries: a good de-duplication key. ``data`` is the decoded item (decoded on
    first access, so a corrupt entry fails in the handler, where a retry and finally
    the dead-letter stream deal with it). ``fields`` is the raw field dict.
    ``deliveries`` counts how often the entry was delivered, this time included.
    """

    __slots__ = ("_queue", "id", "fields", "deliveries", "_data", "_decoded")

    def __init__(self, queue: StreamQueue, entry_id: str, fields: Dict[Any, Any], deliveries: int) -> None:
        self._queue = queue
        self.id = entry_id
        self.fields = fields
        self.deliveries = deliveries
        self._decoded = False
        self._data: Any = None

    @property
    def data(self) -> Any:
        if not self._decoded:
            self._data = self._queue._decode(self.fields)
            self._decoded = True
        return self._data

    def ack(self) -> bool:
        """XACK: done with this entry. True if it was still pending (False: acked before)."""
        return self._queue.ack(self) == 1

    def nack(self) -> None:
        """Give the entry back now: any consumer's janitor delivers it again at its next tick.

        Counts as a delivery: after ``max_deliveries`` the entry is dead-lettered.
        """
        self._queue.nack(self)

    def __repr__(self) -> str:
        return f"<ringq.redis.Message id={self.id!r} deliveries={self.deliveries} fields={self.fields!r}>"


def _stream_entries(reply: Any) -> List[Tuple[Any, Any]]:
    """The (id, fields) pairs of an XREADGROUP reply for one stream (RESP2 or RESP3 shape)."""
    if not reply:
        return []
    if isinstance(reply, dict):  # RESP3: {stream: [entries]}
        for value in reply.values():
            return list(value[0]) if value and isinstance(value[0], list) else list(value)
        return []
    return list(reply[0][1])


class StreamQueue:
    """ringq.Queue's API over a Redis stream and one consumer group, at-least-once.

    ``StreamQueue(client, stream, group, consumer, maxlen=None, ...)``:

    * ``client``: a ``redis.Redis`` (any ``decode_responses``; RESP2 or RESP3).
    * ``stream``, ``group``: the stream key and the consumer group. Both are created if
      missing (XGROUP CREATE ... MKSTREAM at ``group_start``, ``"0"`` by default: a new
      group gets every entry still in the stream).
    * ``consumer``: this consumer's name in the group. Keep it stable across restarts
      (e.g. ``"store-1"``): a restarted consumer then re-reads its own pending entries at
      once instead of waiting ``claim_idle`` for a janitor.
    * ``maxlen``: backpressure bound on undelivered entries (None: unbounded).
    * ``claim_idle`` (60 s): idle time after which the janitor takes an entry over.
    * ``claim_interval`` (``claim_idle / 2``): how often ``get`` runs the janitor.
    * ``max_deliveries`` (5): deliveries before an entry is dead-lettered.
    * ``dead_letter``: the dead-letter stream, ``"<stream>:dead"`` by default.
    * ``block_slice`` (1 s): the longest single XREADGROUP BLOCK.
    * ``dumps`` / ``loads``: the codec of ``data`` (JSON by default: safe and readable
      from any language; pass ``pickle.dumps``/``pickle.loads`` only for a trusted Redis).

    Only a producer? Pass any consumer name; it is not registered until a get.
    Thread-safe: threads may share one StreamQueue (redis-py's pool gives each call its
    own connection).
    """

    def __init__(
        self,
        client: Any,
        stream: str,
        group: str,
        consumer: str,
        maxlen: Optional[int] = None,
        *,
        claim_idle: float = 60.0,
        claim_interval: Optional[float] = None,
        max_deliveries: int = 5,
        dead_letter: Optional[str] = None,
        block_slice: float = 1.0,
        group_start: str = "0",
        dumps: Callable[[Any], Any] = json.dumps,
        loads: Callable[[Any], Any] = json.loads,
    ) -> None:
        if maxlen is not None:
            maxlen = operator.index(maxlen)
            if maxlen < 1:
                raise ValueError("maxlen must be None or an int >= 1")
        max_deliveries = operator.index(max_deliveries)
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be an int >= 1")
        self.client = client
        self.stream = str(stream)
        self.group = str(group)
        self.consumer = str(consumer)
        self.maxlen = maxlen
        self.claim_idle = _positive("claim_idle", claim_idle)
        self.claim_interval = _positive(
            "claim_interval", self.claim_idle / 2 if claim_interval is None else claim_interval)
        self.max_deliveries = max_deliveries
        self.dead_letter = f"{self.stream}:dead" if dead_letter is None else str(dead_letter)
        self.closed_key = f"{self.stream}:closed"
        self.block_slice = _positive("block_slice", block_slice)
        for label, codec in (("dumps", dumps), ("loads", loads)):
            refuse_async(codec, f"StreamQueue({label}=)",
                         "The codec runs inside put() and get(): pass a plain function.")
        self._dumps = dumps
        self._loads = loads
        socket_timeout = None
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            socket_timeout = getattr(pool, "connection_kwargs", {}).get("socket_timeout")
        # redis-py issue 3138: a BLOCK at or beyond the socket timeout reads as a dead socket.
        self._max_block = self.block_slice if not socket_timeout else min(self.block_slice, socket_timeout / 2)
        self._shutdown = False
        self._connected = False               # a call has reached the server (error messages)
        self._bulk_limit: Optional[Tuple[int, bool]] = None   # (proto-max-bulk-len, read from the server)
        self._puts_closed = False             # close_stream() was called on this handle
        self._recovering = threading.Lock()   # one thread at a time re-reads the own PEL
        self._lock = threading.Lock()        # guards the cursors and counters below
        self._recover_from: Optional[str] = "0-0"   # own-PEL cursor; None once caught up
        self._next_claim = 0.0                # monotonic time of the next janitor tick
        self._stats = {"delivered": 0, "redelivered": 0, "claimed": 0, "dead_lettered": 0,
                       "deleted_while_pending": 0, "acked": 0}
        self._bounded_xadd = client.register_script(_BOUNDED_XADD) if maxlen is not None else None
        self._xadd_many = client.register_script(_XADD_MANY)
        self._call(self._create_group, group_start)

    # -- plumbing ------------------------------------------------------------------
    def _create_group(self, start: str) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one Redis operation; connection failures become ConnectionLost."""
        try:
            result = fn(*args, **kwargs)
        except (_RedisConnectionError, _RedisTimeoutError) as e:
            if isinstance(e, ConnectionLost):
                raise
            with self._lock:
                # The reply of a read may be lost after Redis marked its entries delivered
                # to us: re-read our own PEL first on the next get.
                self._recover_from = "0-0"
            raise ConnectionLost(self._connection_error_message(e)) from e
        self._connected = True
        return result

    def _connection_error_message(self, e: BaseException) -> str:
        at = _server_address(self.client)
        where = f"stream {self.stream!r}, group {self.group!r}, consumer {self.consumer!r}"
        if not self._connected:
            # Not one call has reached the server through this handle yet: nothing was lost.
            return (f"could not connect to Redis{at} ({type(e).__name__}: {e}) for {where}: is the "
                    f"server running, and are the client's host and port right? StreamQueue does not "
                    f"retry; call again once Redis is reachable.")
        return (f"lost the connection to Redis{at} ({type(e).__name__}: {e}) on {where}. StreamQueue "
                f"does not retry: call again once Redis is reachable. A put may or may not have added "
                f"its entries; pending entries stay pending, and the next get() re-reads this "
                f"consumer's own pending entries first.")

    def _encode(self, item: Any) -> Any:
        return self._dumps(item)

    def _check_sizes(self, encoded: Sequence[Any]) -> None:
        """ItemTooLarge, before anything is sent, for an item over the server's proto-max-bulk-len.

        Redis answers a longer argument by dropping the connection: redis-py then retries
        and finally raises a ConnectionError, which a supervisor would retry forever.
        """
        for index, value in enumerate(encoded):
            # An upper bound of the size on the wire, without encoding: a str is at most 4
            # bytes a character in any encoding redis-py may use (+4 for a UTF-32 BOM).
            if isinstance(value, str):
                bound: Optional[int] = 4 * len(value) + 4
            elif isinstance(value, (bytes, bytearray)):
                bound = len(value)
            elif isinstance(value, (int, float)):
                continue
            else:
                bound = None  # a memoryview or the like: measured below
            if bound is not None and bound <= _MIN_BULK_LIMIT:
                continue  # the common case: under any limit a server can have
            limit, known = self._proto_max_bulk_len()
            if bound is not None and bound <= limit:
                continue
            encode = self._encoder()
            size = memoryview(encode(value) if encode is not None else value).nbytes
            if size > limit:
                what = "the item" if len(encoded) == 1 else f"item {index} of {len(encoded)}"
                assumed = "" if known else " (Redis's default, assumed: CONFIG GET was refused)"
                raise ItemTooLarge(
                    f"{what} for stream {self.stream!r} encodes to {size:,} bytes, more than the "
                    f"server's proto-max-bulk-len of {limit:,} bytes{assumed}: Redis would refuse it "
                    f"and drop the connection. Nothing was put. Put a reference to the data instead "
                    f"(a key, a path, a URL), or raise the limit (CONFIG SET proto-max-bulk-len).",
                    size, limit, index)

    def _encoder(self) -> Any:
        """The client's own encoder (its encoding), or None: then sizes are len() of bytes."""
        get_encoder = getattr(getattr(self.client, "connection_pool", None), "get_encoder", None)
        return get_encoder().encode if get_encoder is not None else None

    def _proto_max_bulk_len(self) -> Tuple[int, bool]:
        """(limit, read from the server), fetched once with CONFIG GET."""
        if self._bulk_limit is None:
            try:
                reply = self._call(self.client.config_get, "proto-max-bulk-len")
            except ResponseError:  # NOPERM, or CONFIG renamed away
                reply = None
            try:
                self._bulk_limit = (int(next(iter(reply.values()))), True)
            except (AttributeError, StopIteration, TypeError, ValueError):  # refused, or a shape not known here
                self._bulk_limit = (_DEFAULT_BULK_LIMIT, False)
        return self._bulk_limit

    def _put_call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``_call`` for a put: the server's refusal of a too-long argument is ItemTooLarge."""
        try:
            return self._call(fn, *args, **kwargs)
        except ResponseError as e:
            if "invalid bulk length" not in str(e):
                raise
            limit, known = self._bulk_limit or (None, False)
            raise ItemTooLarge(
                f"Redis refused an item for stream {self.stream!r} as longer than its "
                f"proto-max-bulk-len ({e}); it dropped the connection, and this call put nothing. "
                f"Put a reference to the data instead (a key, a path, a URL), or raise the limit "
                f"(CONFIG SET proto-max-bulk-len).", None, limit if known else None) from e
        except ConnectionLost as e:
            if self._bulk_limit is None or self._bulk_limit[1]:
                raise
            # The limit could not be read and the server dropped us: say what may be the cause.
            raise ConnectionLost(
                f"{e} If this put carries an item longer than the server's proto-max-bulk-len "
                f"(unknown here: CONFIG GET was refused), that is why: Redis drops the connection of "
                f"a client that sends one, and retrying the same item fails the same way.") from e

    def _decode(self, fields: Dict[Any, Any]) -> Any:
        raw = fields.get(DATA_FIELD, fields.get(DATA_FIELD.encode()))
        if raw is None:
            return fields  # an entry written by someone else: hand over its fields
        return self._loads(raw)

    # -- put -----------------------------------------------------------------------
    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        """XADD *item*. With ``maxlen``, wait while the group has ``maxlen`` undelivered
        entries; ``Full`` if *block* is false or *timeout* passes first."""
        self.put_many((item,), block, timeout)

    def put_nowait(self, item: Any) -> None:
        self.put(item, block=False)

    def put_many(self, items: Iterable[Any], block: bool = True, timeout: Optional[float] = None) -> None:
        """XADD every item, in order: one Lua script call (one round trip) per 1,000 entries.

        As in ringq.Queue: with ``block=False`` it is all-or-nothing (Full, nothing put,
        unless every item fits under ``maxlen``); with ``block=True`` the items go in as
        room frees up, and on a timeout (Full) the items already put stay.
        """
        encoded = [self._encode(item) for item in tuple(items)]
        deadline = _deadline(timeout) if block else None
        if self._shutdown or self._puts_closed:
            raise ShutDown
        if not encoded:
            return
        self._check_sizes(encoded)
        if self._bounded_xadd is None:
            for start in range(0, len(encoded), _PUT_CHUNK):
                self._put_call(self._xadd_many, keys=[self.stream],
                               args=[DATA_FIELD, *encoded[start:start + _PUT_CHUNK]])
            return
        done = 0
        pause = _POLL_MIN
        while done < len(encoded):
            # block=False is all-or-nothing, so it goes in one script call.
            chunk = encoded[done:done + _PUT_CHUNK] if block else encoded
            added = self._put_call(self._bounded_xadd, keys=[self.stream],
                               args=[self.group, self.maxlen, "0" if block else "1", DATA_FIELD, *chunk])
            done += int(added)
            if done == len(encoded):
                return
            if not block:
                raise Full
            if added:
                pause = _POLL_MIN
                continue
            if self._shutdown:
                raise ShutDown
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Full
                time.sleep(min(pause, remaining))
            else:
                time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)

    # -- get -----------------------------------------------------------------------
    def get(self, block: bool = True, timeout: Optional[float] = None) -> Message:
        """The next Message (ack it when done). Like ringq.Queue.get: Empty on timeout,
        ShutDown after ``shutdown()`` or once a closed stream is drained."""
        return self.get_many(1, block, timeout)[0]

    def get_nowait(self) -> Message:
        return self.get(block=False)

    def get_many(self, max_items: int, block: bool = True, timeout: Optional[float] = None) -> List[Message]:
        """Wait like get() for at least one entry, then return up to *max_items* (one XREADGROUP).

        Order of sources: this consumer's own pending entries (first gets, and after a
        connection error), entries claimed by the janitor, then new entries.
        """
        n = operator.index(max_items)
        if n < 1:
            raise ValueError("max_items must be >= 1")
        deadline = _deadline(timeout) if block else None
        while True:
            if self._shutdown:
                raise ShutDown
            messages = self._read_own_pending(n)
            if messages:
                return messages
            messages = self._claim(n)
            if messages:
                return messages
            block_ms: Optional[int] = None
            if block:
                now = time.monotonic()
                wait = min(self._max_block, max(self._next_claim - now, 0.0))
                if deadline is not None:
                    wait = min(wait, deadline - now)
                block_ms = int(wait * 1000)
                if block_ms < 1:
                    block_ms = None  # BLOCK 0 would mean "forever": read without blocking
            reply = self._call(self.client.xreadgroup, self.group, self.consumer, {self.stream: ">"},
                               count=n, block=block_ms)
            entries = _stream_entries(reply)
            if entries:
                with self._lock:
                    self._stats["delivered"] += len(entries)
                return [Message(self, _text(i), f, 1) for i, f in entries]
            if self._finished():
                raise ShutDown
            if not block or (deadline is not None and time.monotonic() >= deadline):
                raise Empty

    def _recovery_cursor(self) -> Optional[str]:
        with self._lock:
            return self._recover_from

    def _read_own_pending(self, n: int) -> List[Message]:
        """Re-read entries this consumer name left unacknowledged (XREADGROUP from id 0)."""
        if self._recover_from is None or not self._recovering.acquire(blocking=False):
            return []  # caught up, or another thread is re-reading: it delivers those
        try:
            while True:  # until something to deliver, or caught up
                start = self._recovery_cursor()  # another thread's ConnectionLost may reset it
                if start is None:
                    return []
                reply = self._call(self.client.xreadgroup, self.group, self.consumer, {self.stream: start},
                                   count=n)
                entries = _stream_entries(reply)
                with self._lock:
                    if not entries:
                        self._recover_from = None
                        return []
                    self._recover_from = _text(entries[-1][0])
                    self._stats["redelivered"] += len(entries)
                messages = self._deliver_or_bury(entries)  # [] if all were dead-lettered
                if messages:
                    return messages
        finally:
            self._recovering.release()

    def _claim(self, n: int) -> List[Message]:
        """One janitor tick: claim up to *n* entries idle longer than claim_idle.

        XAUTOCLAIM alone scans at most 10 * COUNT PEL entries a call, so a long PEL of
        live entries took one call per 10 * n entries, each followed by a non-blocking
        read: a get busy-looped through it. Instead one XPENDING IDLE (the server scans
        the whole PEL) finds the oldest stale entry, and XAUTOCLAIM starts there. Only a
        tick that made progress is followed by another at once (more may be stale).
        """
        with self._lock:
            now = time.monotonic()
            if now < self._next_claim:
                return []
            # The tick is taken: other threads skip it until the next one is due.
            self._next_claim = now + self.claim_interval
        idle_ms = int(self.claim_idle * 1000)
        stale = self._call(self.client.xpending_range, self.stream, self.group, "-", "+", 1, idle=idle_ms)
        if not stale:
            return []  # nothing stale anywhere in the PEL: until the next tick
        start = _text(stale[0]["message_id"])
        reply = self._call(self.client.xautoclaim, self.stream, self.group, self.consumer, idle_ms,
                           start_id=start, count=n)
        entries = list(reply[1])
        deleted = list(reply[2]) if len(reply) > 2 else []
        with self._lock:
            if entries or deleted:
                self._next_claim = 0.0  # progress: there may be more, continue at the next get
            self._stats["claimed"] += len(entries)
        if deleted:
            with self._lock:
                self._stats["deleted_while_pending"] += len(deleted)
            log.warning("stream %r group %r: %d pending entries were deleted before being acked "
                        "(trimmed or XDEL'd); Redis dropped them from the PEL: %s",
                        self.stream, self.group, len(deleted), [_text(i) for i in deleted[:10]])
        return self._deliver_or_bury(entries)

    def _deliver_or_bury(self, entries: Sequence[Tuple[Any, Any]]) -> List[Message]:
        """Messages for entries now owned by this consumer; dead-letter the over-delivered."""
        if not entries:
            return []
        gone = [entry_id for entry_id, fields in entries if fields is None]
        live = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
        if gone:
            # Deleted from the stream while pending (Redis 6.2 still returns them): their
            # data no longer exists, so nothing can be delivered or dead-lettered.
            self._call(self.client.xack, self.stream, self.group, *gone)
            with self._lock:
                self._stats["deleted_while_pending"] += len(gone)
            log.warning("stream %r group %r: %d pending entries were deleted before being acked: %s",
                        self.stream, self.group, len(gone), [_text(i) for i in gone[:10]])
        if not live:
            return []
        pipe = self.client.pipeline(transaction=False)
        for entry_id, _ in live:
            pipe.xpending_range(self.stream, self.group, entry_id, entry_id, 1, consumername=self.consumer)
        counts = self._call(pipe.execute)
        messages: List[Message] = []
        buried = []
        for (entry_id, fields), info in zip(live, counts):
            deliveries = int(info[0]["times_delivered"]) if info else 1
            if deliveries > self.max_deliveries:
                buried.append((entry_id, fields, deliveries - 1))
            else:
                messages.append(Message(self, _text(entry_id), fields, deliveries))
        if buried:
            self._bury(buried)
        return messages

    def _bury(self, entries: Sequence[Tuple[Any, Dict[Any, Any], int]]) -> None:
        """Move entries to the dead-letter stream: XADD there and XACK here, in one MULTI."""
        pipe = self.client.pipeline(transaction=True)
        for entry_id, fields, deliveries in entries:
            record = {_text(k): v for k, v in fields.items()}
            record.update({"ringq:source-id": _text(entry_id), "ringq:stream": self.stream,
                           "ringq:group": self.group, "ringq:deliveries": deliveries,
                           "ringq:consumer": self.consumer})
            pipe.xadd(self.dead_letter, record)
            pipe.xack(self.stream, self.group, entry_id)
        self._call(pipe.execute)
        with self._lock:
            self._stats["dead_lettered"] += len(entries)
        log.warning("stream %r group %r: %d entries delivered more than %d times moved to %r",
                    self.stream, self.group, len(entries), self.max_deliveries, self.dead_letter)

    # -- acknowledgement -------------------------------------------------------------
    def ack(self, *messages: Any) -> int:
        """XACK messages (Message objects or ids) in one call; returns how many were pending."""
        ids = [m.id if isinstance(m, Message) else _text(m) for m in messages]
        if not ids:
            return 0
        acked = int(self._call(self.client.xack, self.stream, self.group, *ids))
        with self._lock:
            self._stats["acked"] += acked
        return acked

    def ack_many(self, messages: Iterable[Any]) -> int:
        """``ack(*messages)``: one XACK for a whole batch from get_many."""
        return self.ack(*tuple(messages))

    def nack(self, message: Any) -> None:
        """Hand an entry back for redelivery now (its idle time is set to ``claim_idle``)."""
        entry_id = message.id if isinstance(message, Message) else _text(message)
        self._call(self.client.xclaim, self.stream, self.group, self.consumer, 0, [entry_id],
                   idle=int(self.claim_idle * 1000) + 1, justid=True)
        with self._lock:
            self._next_claim = 0.0

    # -- stream-wide state -----------------------------------------------------------
    def _group_info(self) -> Dict[str, Any]:
        for info in self._call(self.client.xinfo_groups, self.stream):
            if _text(info.get("name")) == self.group:
                return dict(info)
        raise ResponseError(f"NOGROUP no consumer group {self.group!r} on stream {self.stream!r}")

    def _undelivered(self, info: Dict[str, Any], limit: Optional[int] = None) -> int:
        lag = info.get("lag")
        if lag is not None:
            return int(lag)
        last = _text(info.get("last-delivered-id", "0-0"))
        # Lag is null (Redis 7.0, after deletions) or absent (before 7.0): count instead.
        return len(self._call(self.client.xrange, self.stream, f"({last}", "+", count=limit))

    def qsize(self) -> int:
        """Entries not yet delivered to the group (XINFO GROUPS lag); approximate by nature."""
        return self._undelivered(self._group_info())

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return self.maxlen is not None and self.qsize() >= self.maxlen

    def pending(self) -> int:
        """Entries delivered to the group's consumers and not yet acknowledged."""
        return int(self._group_info().get("pending", 0))

    def close_stream(self) -> None:
        """Declare the stream finished, for every process: like closing a Go channel.

        Call it after the last producer's last put. Every consumer's get then raises
        ShutDown (and iteration ends) once the group has nothing undelivered and
        nothing pending. This handle's put raises ShutDown. Delete ``closed_key``
        to reuse the stream.
        """
        self._call(self.client.set, self.closed_key, 1)
        self._puts_closed = True

    def _finished(self) -> bool:
        """True once the stream was closed and the group has delivered and acked it all."""
        if not self._call(self.client.exists, self.closed_key):
            return False
        info = self._group_info()
        return int(info.get("pending", 0)) == 0 and self._undelivered(info, limit=1) == 0

    def join(self) -> None:
        """Wait until the group has delivered every entry and every one was acknowledged.

        Redis has no event for that, so this polls (1 to 50 ms). ``task_done`` does not
        exist here: ``Message.ack()`` is what marks one entry done.
        """
        pause = _POLL_MIN
        while True:
            info = self._group_info()
            if int(info.get("pending", 0)) == 0 and self._undelivered(info, limit=1) == 0:
                return
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)

    def trim(self) -> int:
        """Delete entries that every group on the stream has acknowledged (XTRIM MINID).

        Safe for undelivered and pending entries of every group. Returns how many were
        deleted. A group created later at id ``0`` will not see the deleted entries.
        """
        safe: Optional[str] = None
        for info in self._call(self.client.xinfo_groups, self.stream):
            name = _text(info.get("name"))
            last = _text(info.get("last-delivered-id", "0-0"))
            ms, seq = (int(x) for x in last.split("-"))
            floor = f"{ms}-{seq + 1}"  # everything after last-delivered is undelivered
            if int(info.get("pending", 0)):
                oldest = self._call(self.client.xpending, self.stream, name)["min"]
                floor = _text(oldest)
            if safe is None or _id_key(floor) < _id_key(safe):
                safe = floor
        if safe is None:
            return 0
        return int(self._call(self.client.xtrim, self.stream, minid=safe, approximate=False))

    def stats(self) -> Dict[str, int]:
        """This handle's counters: delivered (new), redelivered (own pending re-read),
        claimed (by the janitor), dead_lettered, deleted_while_pending, acked."""
        with self._lock:
            return dict(self._stats)

    # -- shutdown, iteration ---------------------------------------------------------
    @property
    def is_shutdown(self) -> bool:
        return self._shutdown

    def shutdown(self, immediate: bool = False) -> None:
        """Stop this handle: put and get raise ShutDown from now on (a get blocked in
        XREADGROUP notices within ``block_slice``). Acks still work. Unacknowledged
        messages stay pending in Redis, for this consumer name's next run or for another
        consumer's janitor. *immediate* changes nothing: no entry is buffered locally.
        Other processes are not affected (see ``close_stream``)."""
        self._shutdown = True

    def __iter__(self) -> Iterator[Message]:
        return self

    def __next__(self) -> Message:
        try:
            return self.get()
        except ShutDown:
            raise StopIteration from None

    def __enter__(self) -> StreamQueue:  # noqa: PYI034 - typing.Self is 3.11+, no typing_extensions
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return (f"<ringq.redis.StreamQueue stream={self.stream!r} group={self.group!r} "
                f"consumer={self.consumer!r} maxlen={self.maxlen!r}>")


def _id_key(entry_id: str) -> Tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)

