-- Create a job (or return the one its idempotency key names, if its spec is the same).
-- KEYS: job, events, all, byState(queued), idem, clientQueued (zset of the client's waiting jobs),
--       existingJob (the record of the job the idempotency key named when the caller read it; any key
--       of the job when there is none: it is then not touched)
-- ARGV: useIdem, existingId (what the caller read from the idem key, '' none), maxQueued,
--       queuedEventJson, notifyChannel, maxQueuedPerClient, id, specJson, field, value, …
-- → {1, id} created | {0, existingId} | {-1, ''} queue full | {-2, ''} the client has too many waiting |
--   {-3, existingId} the key names a job with another spec | {-5, ''} the idem key changed since the
--   caller read it (read again and retry)
if ARGV[1] == '1' then
  local existing = redis.call('GET', KEYS[5])
  if (existing or '') ~= ARGV[2] then return {-5, ''} end
  if existing and redis.call('EXISTS', KEYS[7]) == 1 then
    if redis.call('HGET', KEYS[7], 'spec') ~= ARGV[8] then return {-3, existing} end
    return {0, existing}
  end
end
local maxQ = tonumber(ARGV[3])
if maxQ > 0 and redis.call('ZCARD', KEYS[4]) >= maxQ then return {-1, ''} end
local maxC = tonumber(ARGV[6])
if maxC > 0 then
  -- the client's set holds only its waiting jobs: drop those that left the queued state (the
  -- queued zset changes with the state in the same step, transition-12.lua)
  local n = 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
    if redis.call('ZSCORE', KEYS[4], m) then n = n + 1 else redis.call('ZREM', KEYS[6], m) end
  end
  if n >= maxC then return {-2, ''} end
end
local id = ARGV[7]
redis.call('HSET', KEYS[1], unpack(ARGV, 9))
redis.call('HSET', KEYS[1], 'state', 'queued', 'lastSeq', 1, 'lastEpoch', 0)
redis.call('ZADD', KEYS[3], 0, id)
redis.call('ZADD', KEYS[4], 0, id)
redis.call('XADD', KEYS[2], '1-0', 'd', ARGV[4])
if ARGV[1] == '1' then redis.call('SET', KEYS[5], id) end
if maxC > 0 then redis.call('ZADD', KEYS[6], 0, id) end
redis.call('PUBLISH', ARGV[5], id)
return {1, id}
