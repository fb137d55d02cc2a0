"""Where background jobs keep their state, progress and results so that every process
(the server, its background-callback processes, Celery workers, a second server) sees
the same: a folder (diskcache, one machine) or Redis (several machines).

Values are JSON (never pickles: a store another process can write must not be able to
run code in ours).  ``add`` is atomic set-if-absent with an expiry, which is what a job
lock needs.
"""

from __future__ import annotations

import json
from typing import Any, Protocol


class JobStore(Protocol):
    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any, expire: float | None = None) -> None: ...

    def add(self, key: str, value: Any, expire: float | None = None) -> bool: ...

    def delete(self, key: str) -> None: ...


class DiskStore:
    """A diskcache folder (process-safe SQLite), for one machine."""

    def __init__(self, path: str):
        import diskcache

        self.path = path
        self._cache = diskcache.Cache(path)

    def get(self, key: str) -> Any:
        raw = self._cache.get(key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any, expire: float | None = None) -> None:
        self._cache.set(key, json.dumps(value), expire=expire)

    def add(self, key: str, value: Any, expire: float | None = None) -> bool:
        return bool(self._cache.add(key, json.dumps(value), expire=expire))

    def delete(self, key: str) -> None:
        self._cache.delete(key)


class RedisStore:
    """A Redis database, shared by servers and Celery workers."""

    def __init__(self, url: str):
        import redis

        self.url = url
        self._redis = redis.Redis.from_url(url)

    def get(self, key: str) -> Any:
        raw = self._redis.get(key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any, expire: float | None = None) -> None:
        self._redis.set(key, json.dumps(value), px=None if expire is None else int(expire * 1000))

    def add(self, key: str, value: Any, expire: float | None = None) -> bool:
        return bool(self._redis.set(key, json.dumps(value), nx=True, px=None if expire is None else int(expire * 1000)))

    def delete(self, key: str) -> None:
        self._redis.delete(key)


def open_store(*, redis_url: str | None = None, path: str | None = None) -> JobStore:
    """Redis when a URL is given, else a diskcache folder at ``path``."""
    if redis_url:
        return RedisStore(redis_url)
    if not path:
        raise ValueError("a job store needs a Redis URL or a folder")
    return DiskStore(path)
