-- Change state and append the state event, in one step.
-- KEYS: job, events, queued, running, succeeded, failed, cancelled (zsets), bullLock, ckpt, log,
--       init (the weights a job with spec.init starts from),
--       idem (the record's idemKey as the caller read it; any key of the job when it has none)
-- ARGV: newState, allowedFrom (comma list), requireOwner ('' = any), setOwner ('' keep, '-' clear),
--       ifLastSeq ('' = any), eventJson, notifyChannel, id, retentionSeconds, requireNoLock ('1'/'0'),
--       field, value, …
-- → {seq, state} | {0, cur} not allowed from cur | {-1, cur} not the owner | {-2, cur} lastSeq moved |
--   {-3, ''} no such job | {-4, cur} someone holds the queue lock | {-5, cur} the record's idemKey is
--   not KEYS[12] (the caller read it again and retries; only checked when it is about to expire)
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {-3, ''} end
local allowed = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == cur then allowed = true end end
if not allowed then return {0, cur} end
if ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'owner') ~= ARGV[3] then return {-1, cur} end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'lastSeq') ~= ARGV[5] then return {-2, cur} end
if ARGV[10] == '1' and redis.call('EXISTS', KEYS[8]) == 1 then return {-4, cur} end
local ttl = tonumber(ARGV[9])
local expires = ttl > 0 and (ARGV[1] == 'succeeded' or ARGV[1] == 'failed' or ARGV[1] == 'cancelled')
local ik = redis.call('HGET', KEYS[1], 'idemKey')
if expires and ik and ik ~= KEYS[12] then return {-5, cur} end
local seq = redis.call('HINCRBY', KEYS[1], 'lastSeq', 1)
redis.call('XADD', KEYS[2], seq .. '-0', 'd', ARGV[6])
redis.call('HSET', KEYS[1], 'state', ARGV[1])
if #ARGV >= 11 then redis.call('HSET', KEYS[1], unpack(ARGV, 11)) end
if ARGV[4] == '-' then redis.call('HDEL', KEYS[1], 'owner') elseif ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'owner', ARGV[4]) end
local idx = {queued = 3, running = 4, succeeded = 5, failed = 6, cancelled = 7}
if cur ~= ARGV[1] then
  redis.call('ZREM', KEYS[idx[cur]], ARGV[8])
  redis.call('ZADD', KEYS[idx[ARGV[1]]], 0, ARGV[8])
end
if expires then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[9], ttl)
  redis.call('EXPIRE', KEYS[10], ttl)
  redis.call('EXPIRE', KEYS[11], ttl)
  if ik then redis.call('EXPIRE', KEYS[12], ttl) end
end
redis.call('PUBLISH', ARGV[7], ARGV[8])
return {seq, ARGV[1]}
