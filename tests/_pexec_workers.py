"""Functions the process pool and process stage tests send to worker processes
(importable by name under spawn and forkserver)."""
import os
import signal
import time


def square(x):
    return x * x


def add(x, y=0):
    return x + y


def ident(x):
    return x


def pid(_=None):
    return os.getpid()


def boom(x):
    raise ValueError(f"boom {x}")


def sleep_return(x, seconds=0.05):
    time.sleep(seconds)
    return x


def die(code):
    os._exit(code)


def kill_self(sig=signal.SIGKILL):
    os.kill(os.getpid(), sig)
    time.sleep(10)


def segfault():
    import ctypes
    import faulthandler

    faulthandler.disable()  # (pytest enables it: no dump on the test's output)

    ctypes.string_at(0)


def exit_in_init():
    os._exit(3)


def raise_in_init():
    raise RuntimeError("init failed on purpose")


_state = {}


def set_state(value):
    _state["v"] = value


def get_state(_=None):
    return _state.get("v")


def unpicklable_result(_=None):
    return lambda: None


class Unpicklable(Exception):
    def __init__(self, a, b):  # pickle calls cls(*args) with one arg: fails
        super().__init__(a)
        self.b = b


def raise_unpicklable(_=None):
    raise Unpicklable("x", "y")


def burn(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def boom_after(x, at=57):
    if x == at:
        raise ValueError(f"at {x}")
    return x


def skip_odd(x):
    from ringq import SKIP

    return SKIP if x % 2 else x


def twice(x):
    yield x
    yield x


def die_at(x):
    if x == 300:
        os._exit(9)
    return x


def burn_forever(x):
    while True:
        pass
