-- Store a checkpoint if it is newer than the stored one, and (when a job record is given and an
-- owner token) only from the job's owner. The replaced one is kept as the previous checkpoint.
-- KEYS: ckpt, job
-- ARGV: epoch, data, token ('' = no fencing)
-- → 1 stored | 0 not newer | -1 not the owner
if ARGV[3] ~= '' and redis.call('HGET', KEYS[2], 'owner') ~= ARGV[3] then return -1 end
local cur = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '-1')
local e = tonumber(ARGV[1])
if e <= cur then return 0 end
if cur >= 0 then
  redis.call('HSET', KEYS[1], 'prevEpoch', cur, 'prevData', redis.call('HGET', KEYS[1], 'data'))
end
redis.call('HSET', KEYS[1], 'epoch', e, 'data', ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], 'checkpointEpoch', e) end
return 1
