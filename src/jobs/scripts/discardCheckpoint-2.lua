-- Set aside a damaged latest checkpoint: if the latest is still of epoch ARGV[1], the previous one
-- becomes the latest (or, without one, the key goes), and the job record's checkpointEpoch follows.
-- KEYS: ckpt, job  ARGV: epoch → the latest epoch afterwards, -1 when none is left
local cur = redis.call('HGET', KEYS[1], 'epoch')
if cur and tonumber(cur) == tonumber(ARGV[1]) then
  local pe = redis.call('HGET', KEYS[1], 'prevEpoch')
  if pe then
    redis.call('HSET', KEYS[1], 'epoch', pe, 'data', redis.call('HGET', KEYS[1], 'prevData'))
    redis.call('HDEL', KEYS[1], 'prevEpoch', 'prevData')
  else
    redis.call('DEL', KEYS[1])
  end
end
local now = redis.call('HGET', KEYS[1], 'epoch')
if redis.call('EXISTS', KEYS[2]) == 1 then
  if now then redis.call('HSET', KEYS[2], 'checkpointEpoch', now) else redis.call('HDEL', KEYS[2], 'checkpointEpoch') end
end
if now then return tonumber(now) end
return -1
