"""In-memory object storage with a global, monotonic ``resourceVersion`` and an event log.

Everything that changes state (the REST layer and the simulated controllers) goes through
``put``/``remove``, so every change gets a new resourceVersion, is recorded for watchers and
wakes the controllers — the same single source of truth etcd is for a real cluster.
"""

from __future__ import annotations

import collections
import copy
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .errors import gone

StoreKey = tuple[str, str]  # (group, plural)
ObjectKey = tuple[str, str]  # (namespace or "", name)
EVENT_LOG_SIZE = 50000


@dataclass(frozen=True)
class WatchEvent:
    resource_version: int
    key: StoreKey
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]


class Store:
    """Objects by resource and (namespace, name); deep copies in and out, so callers never share state."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._rv = 1
        self._objects: dict[StoreKey, dict[ObjectKey, dict[str, Any]]] = collections.defaultdict(dict)
        self._events: collections.deque[WatchEvent] = collections.deque(maxlen=EVENT_LOG_SIZE)
        self._listeners: list[Callable[[], None]] = []
        self.closed = False

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Called (without the lock held) after every change; controllers use it to wake up."""
        self._listeners.append(callback)

    def get(self, key: StoreKey, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self._objects[key].get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, key: StoreKey, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects of one resource, in one namespace or all, sorted by namespace and name like etcd keys."""
        with self.lock:
            items = [copy.deepcopy(obj) for (ns, _name), obj in sorted(self._objects[key].items())
                     if namespace is None or ns == namespace]
        return items

    def keys(self) -> list[StoreKey]:
        with self.lock:
            return [k for k, v in self._objects.items() if v]

    def put(self, key: StoreKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new or changed object, stamping the next resourceVersion."""
        with self.lock:
            meta = obj["metadata"]
            ident = (meta.get("namespace", ""), meta["name"])
            event_type = "MODIFIED" if ident in self._objects[key] else "ADDED"
            self._rv += 1
            stored = copy.deepcopy(obj)
            stored["metadata"]["resourceVersion"] = str(self._rv)
            self._objects[key][ident] = stored
            self._events.append(WatchEvent(self._rv, key, event_type, copy.deepcopy(stored)))
            self.changed.notify_all()
            result = copy.deepcopy(stored)
        self._notify()
        return result

    def remove(self, key: StoreKey, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self._objects[key].pop((namespace, name), None)
            if obj is None:
                return None
            self._rv += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self._rv)
            self._events.append(WatchEvent(self._rv, key, "DELETED", copy.deepcopy(obj)))
            self.changed.notify_all()
        self._notify()
        return obj

    def drop_resource(self, key: StoreKey) -> None:
        """Forget every object of a resource (its CRD went away) without per-object events."""
        with self.lock:
            self._objects.pop(key, None)

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    def events_after(self, key: StoreKey, resource_version: int, timeout: float) -> Iterator[WatchEvent]:
        """Yield events of one resource newer than ``resource_version`` until ``timeout`` or close."""
        deadline = time.monotonic() + timeout
        last = resource_version
        while True:
            with self.lock:
                pending = [e for e in self._events if e.resource_version > last and e.key == key]
                if not pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self.closed:
                        return
                    self.changed.wait(min(remaining, 1.0))
                    continue
            for event in pending:
                last = event.resource_version
                yield event

    def check_watchable(self, resource_version: int) -> None:
        """410 Gone when the log no longer reaches back to ``resource_version`` (clients then relist)."""
        with self.lock:
            if len(self._events) == self._events.maxlen and resource_version + 1 < self._events[0].resource_version:
                raise gone(f"too old resource version: {resource_version} ({self._events[0].resource_version - 1})")

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.changed.notify_all()
