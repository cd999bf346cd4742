-- Append an epoch event: only by the job's current owner while running, and only the epoch right
-- after the last one published — so a retried or resumed worker can never publish an epoch twice.
-- KEYS: job, events, stats
-- ARGV: token, epoch, eventJson, notifyChannel, id, field, value, …
-- → seq | 0 already published | -1 not running / not the owner | -2 would leave a gap
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return -1 end
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return -1 end
local last = tonumber(redis.call('HGET', KEYS[1], 'lastEpoch') or '0')
local e = tonumber(ARGV[2])
if e <= last then return 0 end
if e ~= last + 1 then return -2 end
local seq = redis.call('HINCRBY', KEYS[1], 'lastSeq', 1)
redis.call('XADD', KEYS[2], seq .. '-0', 'd', ARGV[3])
redis.call('HSET', KEYS[1], 'lastEpoch', e)
if #ARGV >= 6 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
redis.call('HINCRBY', KEYS[3], 'epochs', 1)
redis.call('PUBLISH', ARGV[4], ARGV[5])
return seq
