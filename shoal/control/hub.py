"""One LISTEN connection fanning NOTIFYs out to waiting requests (long-polls, event streams).

A waiter takes a `ticket(key)` before reading the database, then `wait(key, ticket, timeout)`:
it returns as soon as a notification for that key arrives after the ticket (no lost wake-ups).
Keys are node names and "events". On reconnect every waiter is woken to re-read.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

import psycopg

from shoal.control.store.db import EVENT_CHANNEL, NODE_CHANNEL, connect
from shoal.errors import ShoalError

log = logging.getLogger(__name__)
EVENTS_KEY = "\x00events"


class Hub:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._lock = threading.Lock()
        self._conds: dict[str, threading.Condition] = {}  # one per key: a wake-up disturbs only its waiters
        self._seq: dict[str, int] = defaultdict(int)
        self._epoch = 0  # bumped on reconnect: wakes everyone
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shoal-hub", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and wake every waiter: a server shutting down ends its long-polls and
        streams now rather than when their waits run out (up to 30 s of a stop)."""
        self._stop.set()
        self._wake([], everyone=True)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def ticket(self, key: str) -> tuple[int, int]:
        with self._lock:
            return self._epoch, self._seq[key]

    def _cond(self, key: str) -> threading.Condition:
        cond = self._conds.get(key)
        if cond is None:
            cond = self._conds.setdefault(key, threading.Condition(self._lock))
        return cond

    def wait(self, key: str, ticket: tuple[int, int], timeout: float) -> bool:
        """Block until `key` was notified after `ticket` or timeout; True when woken."""
        with self._lock:
            cond = self._cond(key)
            return cond.wait_for(lambda: (self._epoch, self._seq[key]) != ticket, timeout)

    def _wake(self, keys: list[str], everyone: bool = False) -> None:
        with self._lock:
            for key in keys:
                self._seq[key] += 1
                if key in self._conds:
                    self._conds[key].notify_all()
            if everyone:
                self._epoch += 1
                for cond in self._conds.values():
                    cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except (psycopg.Error, OSError, ShoalError) as exc:  # the database away: listen again
                log.warning("notification listener: %s", str(exc).strip().splitlines()[:1])
                self._stop.wait(1.0)

    def _listen(self) -> None:
        with connect(self._dsn) as conn:
            conn.execute(f"LISTEN {NODE_CHANNEL}")
            conn.execute(f"LISTEN {EVENT_CHANNEL}")
            self._wake([], everyone=True)
            while not self._stop.is_set():
                self._drain(conn)

    def _drain(self, conn: psycopg.Connection[object]) -> None:
        for note in conn.notifies(timeout=1.0):
            self._wake([EVENTS_KEY if note.channel == EVENT_CHANNEL else note.payload])
