-- Delete a job: its record, history, checkpoints, log and start weights, its idempotency key and its
-- index entries, in one step (src/jobs/delete.ts), so a crash never leaves a job half there.
-- KEYS: job, events, ckpt, log, init, all, queued, running, succeeded, failed, cancelled (zsets),
--       idem (the record's idemKey as the caller read it; any key of the job when it has none)
-- ARGV: id, notifyChannel
-- → 1 deleted | 0 no such job | -5 the record's idemKey is not KEYS[12] (the caller reads it again)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local ik = redis.call('HGET', KEYS[1], 'idemKey')
if ik and ik ~= KEYS[12] then return -5 end
if ik and redis.call('GET', KEYS[12]) == ARGV[1] then redis.call('DEL', KEYS[12]) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('ZREM', KEYS[9], ARGV[1])
redis.call('ZREM', KEYS[10], ARGV[1])
redis.call('ZREM', KEYS[11], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
