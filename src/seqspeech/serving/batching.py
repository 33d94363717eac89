"""Dynamic batching: one queue per model gathers requests for a few milliseconds and runs them as one batch.

Triton's ``max_queue_delay``: the first request of a batch waits up to ``window_s`` for others (up to
``max_batch``); requests that arrive while a batch runs form the next one at once. Requests whose options differ
(``key``) never share a batch. Each model computes on its own single thread, so the event loop stays free.

Limits: :class:`InFlight` bounds the requests a model holds (queued + running; the server answers 503 past it);
a request may time out or be cancelled (its client went away): if its batch has not started it is dropped, else
its result is discarded when the batch ends. :func:`iterate_in_thread` runs a generator (streamed speech) on the
model's thread under the same bound, and stops it between items when the consumer goes away.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


class Overloaded(Exception):
    """A model's queue is full: the server answers 503 with Retry-After."""

    def __init__(self, model: str, limit: int, retry_after_s: int = 1) -> None:
        super().__init__(f"model {model!r} is busy: {limit} requests are already queued or running; retry later")
        self.retry_after_s = retry_after_s


class RequestTimeout(Exception):
    """A request waited or ran longer than the server's per-request limit."""


class InFlight:
    """A thread-safe count of one model's requests (queued or running), bounded by ``limit``."""

    def __init__(self, model: str, limit: int, on_change: Callable[[int], None] | None = None) -> None:
        self.model, self.limit = model, limit
        self.count = 0
        self._lock = threading.Lock()
        self._on_change = on_change

    def acquire(self) -> None:
        with self._lock:
            if self.count >= self.limit:
                raise Overloaded(self.model, self.limit)
            self.count += 1
            count = self.count
        if self._on_change:
            self._on_change(count)

    def release(self) -> None:
        with self._lock:
            self.count = max(0, self.count - 1)
            count = self.count
        if self._on_change:
            self._on_change(count)


@dataclass
class _Job:
    item: Any
    key: Hashable
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)
    started: bool = False
    dropped: bool = False
    counted: bool = True


class DynamicBatcher:
    """``run_batch(items) -> results`` (one result per item, an exception instance for an item that failed) over
    batches of requests gathered within ``window_s``, run on ``executor``. ``on_batch(size, seconds)`` is told of
    every batch (metrics)."""

    def __init__(self, run_batch: Callable[[list[Any]], Sequence[Any]], executor: Executor, inflight: InFlight, *,
                 window_s: float = 0.005, max_batch: int = 16,
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if window_s < 0:
            raise ValueError(f"the batch window must be >= 0 s, got {window_s}")
        self.run_batch, self.executor, self.inflight = run_batch, executor, inflight
        self.window_s, self.max_batch, self.on_batch = window_s, max_batch, on_batch
        self._jobs: list[_Job] = []
        self._arrival = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def submit(self, item: Any, key: Hashable = None, *, timeout: float | None = None,
                     counted: bool = True) -> Any:
        """Queue ``item``; its result once its batch ran. Raises :class:`Overloaded` at once when the model's queue
        is full, :class:`RequestTimeout` after ``timeout`` seconds, and the item's own exception when it failed.
        ``counted=False``: the caller already holds a slot of the queue bound (a stream submitting its steps)."""
        if counted:
            self.inflight.acquire()
        job = _Job(item, key, asyncio.get_running_loop().create_future(), counted=counted)
        self._jobs.append(job)
        self._arrival.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._work())
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), timeout)
        except TimeoutError:
            raise RequestTimeout(f"the request took longer than the server's limit of {timeout:g} s") from None
        finally:
            if not job.started and not job.dropped:  # cancelled or timed out while queued: it never runs
                job.dropped = True
                if counted:
                    self.inflight.release()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._jobs = [j for j in self._jobs if not j.dropped]
            if not self._jobs:
                return
            first = self._jobs[0]
            while len(self._same_key(first)) < self.max_batch:
                left = first.arrived + self.window_s - time.monotonic()
                if left <= 0:
                    break
                self._arrival.clear()
                try:
                    await asyncio.wait_for(self._arrival.wait(), left)
                except TimeoutError:
                    break
            batch = [j for j in self._same_key(first) if not j.dropped][: self.max_batch]
            if not batch:
                continue
            for j in batch:
                j.started = True
            self._jobs = [j for j in self._jobs if not j.started]
            began = time.perf_counter()
            try:
                results: Sequence[Any] = await loop.run_in_executor(self.executor, self.run_batch,
                                                                    [j.item for j in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} items")
            except Exception as e:  # the whole batch failed: every request hears why
                results = [e] * len(batch)
            if self.on_batch:
                self.on_batch(len(batch), time.perf_counter() - began)
            for j, r in zip(batch, results):
                if j.counted:
                    self.inflight.release()
                if j.future.done():
                    continue
                if isinstance(r, BaseException):
                    j.future.set_exception(r)
                else:
                    j.future.set_result(r)

    def _same_key(self, first: _Job) -> list[_Job]:
        return [j for j in self._jobs if j.key == first.key and not j.dropped]


async def unless_disconnected(request: Any, work: Awaitable[T]) -> T:
    """Await ``work`` unless the HTTP client goes away first (then ``work`` is cancelled: a queued request is dropped
    and its slot freed). The request body must have been read."""
    task = asyncio.ensure_future(work)

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        raise ClientGone()
    return task.result()


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""
