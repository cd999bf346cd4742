-- Add an owner to an uploaded object that exists (src/jobs/upload-owners.ts): the check and the add
-- in one step, so a delete never leaves an owners hash behind for an object that is gone.
-- KEYS: the object (its hash), owners (hash)
-- ARGV: owner fingerprint, upload time (ms)
-- → {1 new owner | 0 already one, that owner's upload time}, or nil when there is no object
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local added = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
return {added, redis.call('HGET', KEYS[2], ARGV[1])}
