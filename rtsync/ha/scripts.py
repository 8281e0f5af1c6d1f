"""The Lua scripts behind leases and fenced checkpoints: each check-and-write runs atomically inside Redis."""

from __future__ import annotations

__all__ = ["ACQUIRE", "RELEASE", "RENEW", "SAVE_FENCED"]

# KEYS: lease, token counter. ARGV: owner, ttl ms.
# Free (SET NX) or already ours (a holding we gave up locally): take it for ttl and hand out the
# next fencing token; held by another: nil.
ACQUIRE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'XX', 'PX', ARGV[2])
elseif not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
return redis.call('INCR', KEYS[2])
"""

# KEYS: lease, token counter. ARGV: owner, ttl ms, token.
# Extend only our own holding, and only if no newer token was handed out since.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: owner.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: checkpoint, its fence (newest token that wrote it), the lease's token counter.
# ARGV: token, state (JSON).
# Refuse a token older than the newest one that wrote this checkpoint, and one older than the
# newest handed out by the lease: a paused old holder cannot commit even before the new one does.
SAVE_FENCED = """
local token = tonumber(ARGV[1])
local fence = tonumber(redis.call('GET', KEYS[2]) or '0')
local issued = tonumber(redis.call('GET', KEYS[3]) or '0')
if token < fence or token < issued then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""
