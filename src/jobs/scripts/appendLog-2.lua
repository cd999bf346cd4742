-- Append a line to a job's log, keeping the last ARGV[2]; only while the job exists (no orphan log
-- of a deleted or expired job), and expiring with the record when retention set it to expire.
-- KEYS: log, job  ARGV: lineJson, maxLines → 1 appended | 0 no such job
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
