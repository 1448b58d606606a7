"""Type stubs for ringq.process_pool (ringq.ProcessExecutor)."""
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from types import TracebackType
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple, TypeVar

from ._queue import CancelToken

_T = TypeVar("_T")

__all__ = ["ProcessExecutor", "WorkerDied", "check_sendable"]

class WorkerDied(BrokenProcessPool):
    exitcode: Optional[int]
    def __init__(self, message: str, exitcode: Optional[int] = None) -> None: ...

def check_sendable(fn: Any, what: str = "function") -> bytes: ...

class ProcessExecutor(Executor):
    def __init__(
        self,
        max_workers: Optional[int] = None,
        max_pending: Optional[int] = None,
        *,
        mp_context: Optional[BaseContext] = None,
        initializer: Optional[Callable[..., object]] = None,
        initargs: Tuple[Any, ...] = (),
        max_tasks_per_child: Optional[int] = None,
        cancel: Optional[CancelToken] = None,
    ) -> None: ...
    @property
    def max_workers(self) -> int: ...
    @property
    def max_pending(self) -> int: ...
    def pending(self) -> int: ...
    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]: ...
    def submit_nowait(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]: ...
    def submit_call(
        self,
        fn: Callable[..., _T],
        args: Iterable[Any] = (),
        kwargs: Optional[Dict[str, Any]] = None,
        *,
        block: bool = True,
        timeout: Optional[float] = None,
        cancel: Optional[CancelToken] = None,
    ) -> Future[_T]: ...
    def map(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: Optional[float] = None,
        chunksize: Optional[int] = None,
        buffersize: Optional[int] = None,
    ) -> Iterator[_T]: ...
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Optional[bool]: ...
