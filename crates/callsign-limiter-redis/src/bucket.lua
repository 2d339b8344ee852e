-- One token bucket, read, refilled, changed and written in one atomic script: the arithmetic of
-- callsign_store::bucket (bucket.rs), rule for rule. Lua numbers are doubles: exact for integers up to 2^53.
--
-- KEYS[1]  the bucket (a hash: tokens, updated_at; a missing key is a full bucket)
-- ARGV[1]  "take" | "give_back" | "peek"
-- ARGV[2]  capacity (already capped at i32::MAX by the caller)
-- ARGV[3]  refill period in ms (already at least 1)
-- ARGV[4]  now, Unix ms, from the caller's clock (never Redis' clock)
-- Answers {allowed (1|0), remaining, next_refill_at (Unix ms) or -1 when the bucket is full}.
local op = ARGV[1]
local capacity = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local now = tonumber(ARGV[4])

-- Refill (bucket::refill): a missing level is full, dated now; tokens are clamped to [0, capacity]; a full bucket is
-- dated now; otherwise one token per whole period elapsed, and updated_at advances by whole periods only; time
-- running backwards refills nothing.
local tokens, updated = capacity, now
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'updated_at')
local stored_tokens, stored_updated = tonumber(stored[1]), tonumber(stored[2])
if stored_tokens ~= nil and stored_updated ~= nil then
  tokens = math.max(0, math.min(stored_tokens, capacity))
  if tokens < capacity then
    local elapsed = math.max(0, now - stored_updated)
    local periods = math.floor(elapsed / period)
    -- Make the integer division exact whatever the rounding of the double quotient.
    if periods * period > elapsed then periods = periods - 1 end
    if (periods + 1) * period <= elapsed then periods = periods + 1 end
    if tokens + periods >= capacity then
      tokens, updated = capacity, now
    else
      tokens, updated = tokens + periods, stored_updated + periods * period
    end
  else
    tokens = capacity
  end
end

local allowed
if op == 'take' then
  if tokens > 0 then
    tokens = tokens - 1
    allowed = 1
  else
    allowed = 0
  end
elseif op == 'give_back' then
  -- Back to the capacity: full, dated now.
  if tokens + 1 >= capacity then
    tokens, updated = capacity, now
  else
    tokens = tokens + 1
  end
  allowed = tokens > 0 and 1 or 0
elseif op == 'peek' then
  allowed = tokens > 0 and 1 or 0
else
  return redis.error_reply('unknown bucket operation')
end

if op ~= 'peek' then
  if tokens >= capacity then
    -- A full bucket dated now is what a missing key stands for: nothing to keep.
    redis.call('DEL', KEYS[1])
  else
    redis.call('HSET', KEYS[1], 'tokens', string.format('%.0f', tokens), 'updated_at', string.format('%.0f', updated))
    -- Expire once the bucket would be full again (then it means the same as a missing key), measured from now.
    local full_at = updated + (capacity - tokens) * period
    local ttl = math.min(math.max(1, full_at - now), 2 ^ 53)
    redis.call('PEXPIRE', KEYS[1], string.format('%.0f', ttl))
  end
end

local next_refill_at = -1
if tokens < capacity then next_refill_at = updated + period end
return {allowed, tokens, next_refill_at}
