"""A thread pool with a bounded queue, for the agent's servers (its HTTP endpoint, its DNS server).

Under `shoal.agent.httpd` and `shoal.agent.dns`: `concurrent.futures.ThreadPoolExecutor` queues
without limit, so a burst of idle TCP connections or datagrams waits there for ever and starves
everything behind it; `BoundedPool.submit` refuses (returns False) once `workers` jobs run and
`queue` more wait, and the server then drops or refuses the request at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class BoundedPool:
    def __init__(
        self, workers: int, queue: int, name: str, initializer: Callable[[], None] | None = None
    ) -> None:
        self._pool = ThreadPoolExecutor(workers, name, initializer=initializer)
        self._room = threading.BoundedSemaphore(workers + queue)

    def submit(self, work: Callable[..., Any], *args: Any) -> bool:
        """Run `work(*args)` on a worker; False, and nothing runs, when the pool and queue are full."""
        if not self._room.acquire(blocking=False):
            return False
        try:
            future = self._pool.submit(work, *args)
        except RuntimeError:  # shut down
            self._room.release()
            return False
        future.add_done_callback(self._done)
        return True

    def _done(self, _future: Future[Any]) -> None:
        self._room.release()

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
