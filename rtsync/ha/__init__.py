"""Running listeners on several machines through Redis: hot-standby leases, fenced checkpoints, fleets of accounts."""

from .checkpoint import RedisCheckpoint
from .fleet import Fleet
from .lease import RedisLease

__all__ = ["Fleet", "RedisCheckpoint", "RedisLease"]
