-- One exponential backoff step, read, decided and written in one atomic script: the arithmetic of
-- callsign_store::bucket::backoff (bucket.rs), rule for rule.
--
-- KEYS[1]  the backoff (a hash: level, last; a missing key means no event yet)
-- ARGV[1]  base wait, ms      ARGV[2]  longest wait, ms      ARGV[3]  reset after, ms
-- ARGV[4]  now, Unix ms, from the caller's clock (never Redis' clock)
-- Answers {allowed (1|0), level before this event, the level's wait in ms, retry_at (Unix ms) or -1}.
local base = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local reset_after = tonumber(ARGV[3])
local now = tonumber(ARGV[4])

local level, last = 0, nil
local stored = redis.call('HMGET', KEYS[1], 'level', 'last')
local stored_level, stored_last = tonumber(stored[1]), tonumber(stored[2])
if stored_level ~= nil and stored_last ~= nil and stored_level > 0 and now - stored_last < reset_after then
  level, last = stored_level, stored_last
end

-- bucket::backoff_wait: 0 at level 0, then base doubling per level, at most max_wait.
local wait = 0
if level > 0 then
  wait = math.min(math.max(base, 0) * 2 ^ math.min(level - 1, 40), max_wait)
end

if last ~= nil and now < last + wait then
  return {0, level, wait, last + wait}
end
redis.call('HSET', KEYS[1], 'level', math.min(level + 1, 62), 'last', now)
-- Forgotten once it would have reset anyway.
redis.call('PEXPIRE', KEYS[1], math.max(1, reset_after))
return {1, level, wait, -1}
