"""Tell coroutine functions apart where only a plain function can run (private).

The toolkit's thread-side calls (``BoundedExecutor.submit``, ``Router``'s key...)
would call an ``async def`` function and get a coroutine object back, never
awaited: a result that is not one, and a "coroutine was never awaited" warning at
exit. They call :func:`refuse_async` when the function is passed, so the mistake is
a TypeError at once, naming the fix.
"""
from __future__ import annotations

import functools
import inspect
import types
from typing import Any

__all__ = ["async_kind", "is_async_callable", "refuse_async"]

_ASYNC_FLAGS = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
# Callables that are never coroutine functions: skip the slower look for them.
_PLAIN = (types.BuiltinFunctionType, types.BuiltinMethodType, types.MethodWrapperType,
          types.WrapperDescriptorType, types.MethodDescriptorType, type)


def async_kind(fn: Any) -> str:
    """"coroutine" for an ``async def`` function, "async generator" for an
    ``async def`` with ``yield``, "" otherwise. Sees through ``functools.partial``,
    bound methods and objects whose ``__call__`` is ``async def``."""
    if inspect.iscoroutinefunction(fn):
        return "coroutine"
    if inspect.isasyncgenfunction(fn):
        return "async generator"
    if not isinstance(fn, (types.FunctionType, types.MethodType, functools.partial, *_PLAIN)):
        call = getattr(type(fn), "__call__", None)  # noqa: B004 - what calling an instance runs
        if call is not None and call is not fn:
            if inspect.iscoroutinefunction(call):
                return "coroutine"
            if inspect.isasyncgenfunction(call):
                return "async generator"
    return ""


def is_async_callable(fn: Any) -> bool:
    """Whether calling *fn* makes a coroutine or an async generator (cheap for plain functions)."""
    code = getattr(fn, "__code__", None)  # functions and bound methods
    if code is not None:
        return bool(getattr(code, "co_flags", 0) & _ASYNC_FLAGS)
    if isinstance(fn, _PLAIN):
        return False
    return bool(async_kind(fn))


def refuse_async(fn: Any, what: str, fix: str) -> None:
    """TypeError if *fn* is a coroutine (or async generator) function: *what* cannot run it."""
    if is_async_callable(fn):
        name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
        raise TypeError(f"{what} got {name!r}, an async def function, which it cannot run: "
                        f"calling it only makes a coroutine that is never awaited. {fix}")
