"""Micro-batching: requests that arrive together are decoded in one call.

A worker task takes the first waiting request, keeps the batch open for at
most ``wait_s`` (or until ``max_lines`` lines are in), then groups the
requests by decoding options and makes one call of the decode function per
group, in a worker thread so that the event loop keeps answering.  Under
load the queue is never empty, so batches fill at once and throughput comes
close to offline batched translation; a lone request waits ``wait_s`` at most.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# decode(lines, options, keep_attention) -> one result per line, in order
DecodeFn = Callable[[list[str], Any, bool], Sequence[Any]]


@dataclass
class Job:
    lines: list[str]
    options: Any  # passed to the decode function as is
    key: Hashable  # jobs with equal keys may share a call
    attention: bool
    future: asyncio.Future[Sequence[Any]] = field(repr=False)


class MicroBatcher:
    """Collects jobs from concurrent requests and decodes them in groups."""

    def __init__(self, decode: DecodeFn, *, wait_s: float, max_lines: int) -> None:
        self.decode = decode
        self.wait_s = wait_s
        self.max_lines = max_lines
        self.calls = 0  # decode calls made (tests and logs read it)
        self._queue: asyncio.Queue[Job] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # one thread: the model decodes one batch at a time
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nmt-decode")
        self._ids = itertools.count()

    async def submit(self, lines: list[str], options: Any, key: Hashable, attention: bool) -> Any:
        """Results for ``lines``, decoded with every job of equal ``key`` that
        arrives within the wait; ``key=None`` decodes the job on its own."""
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._loop is not loop:
            self._queue, self._loop = asyncio.Queue(), loop
            self._worker = loop.create_task(self._run())
        assert self._queue is not None
        if key is None:
            key = ("alone", next(self._ids))
        future: asyncio.Future[Sequence[Any]] = loop.create_future()
        await self._queue.put(Job(lines, options, key, attention, future))
        return await future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            jobs = await self._collect(self._queue)
            groups: dict[Hashable, list[Job]] = {}
            for job in jobs:
                groups.setdefault(job.key, []).append(job)
            for group in groups.values():
                await self._decode(group)

    async def _collect(self, queue: asyncio.Queue[Job]) -> list[Job]:
        """The first job, then those that arrive before the wait ends or the batch is full."""
        jobs = [await queue.get()]
        lines = len(jobs[0].lines)
        deadline = asyncio.get_running_loop().time() + self.wait_s
        while lines < self.max_lines:
            if queue.empty():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            else:
                job = queue.get_nowait()
            jobs.append(job)
            lines += len(job.lines)
        return jobs

    async def _decode(self, group: list[Job]) -> None:
        """One call for the group's lines; each job gets its share, or the error.
        A job whose future is done already (its client went away and the
        request was cancelled) is dropped before decoding."""
        group = [job for job in group if not job.future.done()]
        if not group:
            return
        lines = [line for job in group for line in job.lines]
        attention = any(job.attention for job in group)
        self.calls += 1
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(
                self._executor, self.decode, lines, group[0].options, attention
            )
        except Exception as exc:  # a bug: every waiting request gets a 500
            for job in group:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        start = 0
        for job in group:
            if not job.future.done():  # the client may have gone
                job.future.set_result(results[start : start + len(job.lines)])
            start += len(job.lines)
