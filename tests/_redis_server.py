"""Start a real ``redis-server`` for tests, benchmarks and examples (never a mock).

``RedisServer(dir).start()`` runs the binary on a free loopback port, in *dir*, with
no RDB snapshots and (optionally) an AOF fsync'd on every write, and waits until it
answers PING. ``stop()`` ends it (SIGKILL with ``kill=True``, as a crash would);
``start()`` again restarts it on the same port and directory, so an AOF is replayed.

``skip_reason()`` says why no server can be had (no binary, no redis-py), or None.
"""
import os
import shutil
import signal
import socket
import subprocess
import time

START_TIMEOUT = 15.0


def server_binary():
    return os.environ.get("RINGQ_REDIS_SERVER") or shutil.which("redis-server")


def skip_reason():
    try:
        import redis  # noqa: F401 - redis-py, the client the tests use
    except ImportError:
        return "redis-py is not installed: pip install 'ringq[redis]'"
    if server_binary() is None:
        return ("no redis-server binary on PATH (apt-get install redis-server, or set "
                "RINGQ_REDIS_SERVER to its path)")
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, directory, aof=False):
        self.directory = str(directory)
        self.aof = aof
        self.port = None
        self.process = None
        self.log_path = os.path.join(self.directory, "redis.log")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def start(self):
        os.makedirs(self.directory, exist_ok=True)
        restart = self.port is not None  # a restart keeps its port, so clients reconnect
        for _attempt in range(5):
            if not restart:
                self.port = _free_port()  # another process may grab it first: then retry
            args = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                    "--dir", self.directory, "--save", "", "--daemonize", "no",
                    "--logfile", self.log_path, "--protected-mode", "no"]
            if self.aof:
                args += ["--appendonly", "yes", "--appendfsync", "always"]
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
            if self._wait_ready():
                return self
            self._end(signal.SIGKILL)
            self.process = None
        raise RuntimeError(f"redis-server did not start; see {self.log_path}")

    def _wait_ready(self):
        import redis

        deadline = time.monotonic() + START_TIMEOUT
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False  # exited: port taken, most likely
                try:
                    if client.ping():
                        return True
                except redis.exceptions.RedisError:
                    time.sleep(0.02)
            return False
        finally:
            client.close()

    def _end(self, sig):
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def stop(self, kill=False):
        """SIGTERM (a clean shutdown) or, with kill=True, SIGKILL (a crash)."""
        self._end(signal.SIGKILL if kill else signal.SIGTERM)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop(kill=True)
