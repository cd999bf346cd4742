-- Delete an uploaded corpus (src/jobs/corpora.ts) in one step: with an owner, only its ownership goes
-- while another key owns the corpus too; the corpus goes with its last owner, or outright (an admin's
-- delete, keys off). One step, so another key's upload of the same text is either counted (the
-- corpus stays for it) or comes after (and stores it anew), never lost in between.
-- KEYS: corpus (hash), text (string), jobs (set), owners (hash), corpora (zset)
-- ARGV: owner fingerprint ('' deletes outright), corpus id, and whether the corpus may go with this
--       caller: '1', or '0' while other keys' jobs are not checked yet (then the last owner changes nothing)
-- → 'kept' (others still own it) | 'deleted' | 'last' (ARGV[3] '0' and the caller is the last owner)
if ARGV[1] ~= '' then
  if redis.call('HLEN', KEYS[4]) - redis.call('HEXISTS', KEYS[4], ARGV[1]) > 0 then
    redis.call('HDEL', KEYS[4], ARGV[1])
    return 'kept'
  end
  if ARGV[3] ~= '1' then return 'last' end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[5], ARGV[2])
return 'deleted'
