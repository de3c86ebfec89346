"""Hand requests from other threads to the thread that runs the simulation, and wait for them.

The simulation (cocotb's scheduler, or an asyncio loop in the unit tests) is single-threaded and
must never be re-entered from another thread. FUSE calls its handlers on threads of its own, so:

* a FUSE thread calls :meth:`SimBridge.call` with a coroutine *factory*; the request goes into a
  thread-safe queue and the FUSE thread blocks on a :class:`concurrent.futures.Future`;
* the simulation thread runs :meth:`SimBridge.serve` as one of its coroutines: it takes requests
  from the queue, awaits them in the simulation's own scheduler (so a config read becomes CfgRd
  TLPs that the RTL answers while simulated time runs), and sets the future's result or
  exception, which wakes the FUSE thread.

When there is nothing to do, ``serve`` either lets simulated time run (``idle_wait_s = 0``, while
``make sim``'s scenario runs beside it) or blocks the simulation thread up to ``idle_wait_s`` of
wall time waiting for the next request (``make shell``: an idle simulation costs no CPU), then
advances simulated time by ``step_ns`` so that whatever the device does meanwhile goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from siov_sim.sw.bus import Runtime

log = logging.getLogger(__name__)
T = TypeVar("T")
Request = tuple[Callable[[], Awaitable[Any]], "Future[Any]"]


class BridgeClosed(RuntimeError):
    """The simulation side is gone; no request can be served any more."""


class SimBridge:
    def __init__(self, timeout_s: float = 300.0) -> None:
        self.timeout_s = timeout_s
        self._q: queue.Queue[Request] = queue.Queue()
        self._closed = threading.Event()
        self.served = 0

    # ---- any thread but the simulation's ----------------------------------------------------------
    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` in the simulation and return its result (or raise its exception)."""
        if self._closed.is_set():
            raise BridgeClosed("the simulation has stopped")
        fut: Future[T] = Future()
        self._q.put((fn, fut))
        return fut.result(self.timeout_s)

    # ---- the simulation thread ----------------------------------------------------------------
    async def run_pending(self) -> int:
        """Serve every request queued now; returns how many."""
        n = 0
        while True:
            try:
                fn, fut = self._q.get_nowait()
            except queue.Empty:
                return n
            await self._run(fn, fut)
            n += 1

    async def _run(self, fn: Callable[[], Awaitable[Any]], fut: Future[Any]) -> None:
        if not fut.set_running_or_notify_cancel():
            return
        try:
            fut.set_result(await fn())
        except BaseException as exc:  # handed to the caller's thread, never lost here
            fut.set_exception(exc)
        self.served += 1

    async def serve(
        self,
        runtime: Runtime,
        stop: Callable[[], bool],
        *,
        idle_wait_s: float = 0.0,
        step_ns: float = 1000.0,
    ) -> None:
        """Serve requests until ``stop()`` is true (see the module docstring)."""
        while not stop():
            if not await self.run_pending():
                if idle_wait_s > 0:
                    try:  # block the simulation thread (wall time only) until a request comes
                        fn, fut = self._q.get(timeout=idle_wait_s)
                    except queue.Empty:
                        pass
                    else:
                        await self._run(fn, fut)
                        continue
                await runtime.sleep(step_ns)

    def close(self) -> None:
        """No more requests: everything still queued fails with :class:`BridgeClosed`."""
        self._closed.set()
        while True:
            try:
                _fn, fut = self._q.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                fut.set_exception(BridgeClosed("the simulation has stopped"))
