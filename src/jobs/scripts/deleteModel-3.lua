-- Delete an uploaded model (src/jobs/models.ts) in one step: with an owner, only its ownership goes
-- while another key owns the model too; the model goes with its last owner, or outright (an admin's
-- delete, keys off). One step, so another key's upload of the same file is either counted (the
-- model stays for it) or comes after (and stores it anew), never lost in between.
-- KEYS: model (hash), owners (hash), models (zset)
-- ARGV: owner fingerprint ('' deletes outright), model id
-- → 'kept' (others still own it) | 'deleted'
if ARGV[1] ~= '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
  if redis.call('HLEN', KEYS[2]) > 0 then return 'kept' end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 'deleted'
