-- Fixed-window counter shared by every api process (HTTP and gRPC): one per client and window.
-- KEYS: counter  ARGV: windowSeconds → {count, ttlSeconds}
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
