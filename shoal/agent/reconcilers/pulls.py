"""Image pulls off the reconcile thread, each with a deadline (used by the containers reconciler).

A start asks ``Pulls.poll(ref, insecure, policy, logins)`` (logins: the node's registry logins):
the first ask begins the pull on its own thread and waits ``wait_s`` for it (a cached image
answers at once, so a restart needs no second pass; later asks do not wait); while the pull is
still running the answer is ``None`` and the container stays "pulling", so one slow or hostile
image never holds up the node's other starts, stops and network work. A pull ends with the image
or its one-line error, by the ``timeout_s`` deadline at the latest (the store stops skopeo and the
unpack then), and wakes the loop through ``done``. Replicas of one image in one pass share its
pull; ``end_pass`` forgets the pulls whose outcome was taken.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shoal.agent.images.limits import Deadline
from shoal.model.container import PullPolicy
from shoal.model.registry import RegistryAuth

log = logging.getLogger(__name__)

Key = tuple[str, tuple[str, ...], PullPolicy]


class Puller(Protocol):
    def pull(
        self,
        ref: str,
        insecure: Sequence[str],
        policy: PullPolicy = "always",
        logins: Sequence[RegistryAuth] = (),
        deadline: Deadline | None = None,
    ) -> Any: ...


@dataclass
class Pull:
    """One pull in flight (or ended): its outcome once ``finished`` is set."""

    finished: threading.Event = field(default_factory=threading.Event)
    image: Any = None
    error: Exception | None = None


@dataclass
class Pulls:
    """The node's pulls by (ref, insecure registries, policy)."""

    images: Puller
    timeout_s: float = 900.0
    wait_s: float = 0.5
    done: Callable[[], None] | None = None
    _pulls: dict[Key, Pull] = field(default_factory=dict)
    _taken: set[Key] = field(default_factory=set)
    _polled: set[Key] = field(default_factory=set)

    def poll(
        self, ref: str, insecure: Sequence[str], policy: PullPolicy, logins: Sequence[RegistryAuth] = ()
    ) -> Any | None:
        """The pulled image, ``None`` while its pull runs; the pull's error is raised here."""
        key: Key = (ref, tuple(sorted(insecure)), policy)
        self._polled.add(key)
        pull = self._pulls.get(key)
        if pull is None:
            pull = self._begin(key, tuple(logins))
            pull.finished.wait(self.wait_s)
        if not pull.finished.is_set():
            return None
        self._taken.add(key)
        if pull.error is not None:
            raise pull.error
        return pull.image

    def running(self) -> list[str]:
        """The refs whose pulls have not ended."""
        return sorted(key[0] for key, pull in self._pulls.items() if not pull.finished.is_set())

    def held(self) -> list[str]:
        """Digests of images pulled but not yet taken by a start (image GC must keep them)."""
        return [str(getattr(p.image, "digest", "")) for p in self._pulls.values() if p.image is not None]

    def end_pass(self) -> None:
        """Forget the pulls whose outcome a start took (the next start asks afresh), and ended
        ones no start asked for in this pass (their container is no longer to start)."""
        ended = {key for key, pull in self._pulls.items() if pull.finished.is_set()}
        for key in self._taken | (ended - self._polled):
            self._pulls.pop(key, None)
        self._taken.clear()
        self._polled.clear()

    def _begin(self, key: Key, logins: tuple[RegistryAuth, ...]) -> Pull:
        pull = self._pulls[key] = Pull()
        args = (key, pull, logins)
        thread = threading.Thread(target=self._run, args=args, name=f"pull:{key[0]}", daemon=True)
        thread.start()
        return pull

    def _run(self, key: Key, pull: Pull, logins: tuple[RegistryAuth, ...]) -> None:
        ref, insecure, policy = key
        try:
            deadline = Deadline(self.timeout_s, f"image {ref}: pull")
            pull.image = self.images.pull(ref, insecure, policy, logins, deadline)
        except Exception as exc:  # the start that polls reports it as the container's message
            pull.error = exc
        finally:
            pull.finished.set()
            if self.done is not None:
                self.done()
