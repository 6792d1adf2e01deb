"""What masters share besides the metadata store: the manifest cache and
per-user rate limits.

Two implementations of each (``base.py`` says what they promise):

- in-process (``memory.py``): the default, and all one master needs;
- Redis (``redis_backend.py``, when ``REDIS_URL`` or ``REDIS_ADDR`` is set): one cache
  and one set of counters for every master, with invalidations broadcast over
  pub/sub. If Redis goes away the masters keep serving from the database and
  limit each user on their own until it is back (logged once each way).
"""

from __future__ import annotations

from echofs.cache.base import Cache
from echofs.cache.memory import InProcessCache
from echofs.config import Settings


def open_cache(settings: Settings) -> Cache:
    """The cache this master uses: Redis if configured, else in-process."""
    url = settings.cache_url
    if url is None:
        return InProcessCache()
    from echofs.cache.redis_backend import RedisCache

    return RedisCache(url, prefix=settings.redis_prefix)


__all__ = ["Cache", "InProcessCache", "open_cache"]
