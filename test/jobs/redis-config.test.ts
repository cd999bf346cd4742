// REDIS_CLUSTER_NODES and the Lua scripts, without a server: the variable is parsed (or refused
// with a line naming it), the key prefix becomes a hash tag on a cluster only, and each script file
// declares (in its name) exactly the KEYS it uses and never names a key any other way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/jobs/config.js';
import { Keys } from '../../src/jobs/redis.js';
import { luaScripts } from '../../src/jobs/scripts.js';

test('REDIS_CLUSTER_NODES: parsed into nodes, and the prefix becomes the hash tag {QUEUE_PREFIX}; unset, keys are as before', () => {
  const c = loadConfig({ REDIS_CLUSTER_NODES: ' 10.0.0.1:7000, redis-b:7001 ,[::1]:7002', QUEUE_PREFIX: 'prod' });
  assert.deepEqual(c.redisClusterNodes, [
    { host: '10.0.0.1', port: 7000 },
    { host: 'redis-b', port: 7001 },
    { host: '::1', port: 7002 },
  ]);
  assert.equal(c.prefix, '{prod}');
  assert.equal(new Keys(c.prefix).job('j1'), '{prod}:job:j1');
  const single = loadConfig({ QUEUE_PREFIX: 'prod' });
  assert.equal(single.redisClusterNodes, undefined);
  assert.equal(single.prefix, 'prod', 'single-node key names are unchanged');
  assert.equal(loadConfig({ REDIS_CLUSTER_NODES: ' , ' }).prefix, 'lstm', 'an empty list is no cluster');
});

test('REDIS_CLUSTER_NODES: an entry that is not host:port is a ConfigError naming it', () => {
  for (const bad of ['redis-a', 'redis-a:', 'redis-a:0', 'redis-a:70000', ':7000', 'a:b:7000', 'redis-a:7000,oops']) {
    assert.throws(
      () => loadConfig({ REDIS_CLUSTER_NODES: bad }),
      (e: unknown) => e instanceof ConfigError && /REDIS_CLUSTER_NODES/.test(e.message) && /not host:port/.test(e.message),
      bad,
    );
  }
});

test('every script declares the KEYS it uses (<name>-<nkeys>.lua) and names no key otherwise', () => {
  const scripts = luaScripts();
  assert.deepEqual(scripts.map((s) => s.name).sort(), [
    'addOwner',
    'appendEpoch',
    'appendLog',
    'create',
    'deleteCorpus',
    'deleteJob',
    'deleteModel',
    'discardCheckpoint',
    'putCheckpoint',
    'rate',
    'transition',
  ]);
  for (const s of scripts) {
    const code = s.lua.replace(/--.*$/gm, ''); // comments may mention anything
    const used = [...code.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1]));
    // transition picks the per-state sets through a table of KEYS indexes: those count as used
    const table = /local idx = \{([^}]*)\}/.exec(code);
    if (table && /KEYS\[idx\[/.test(code)) used.push(...[...table[1].matchAll(/=\s*(\d+)/g)].map((m) => Number(m[1])));
    assert.equal(Math.max(...used), s.numberOfKeys, `${s.name}: highest KEYS index vs the file name`);
    assert.deepEqual(
      [...new Set(used)].sort((a, b) => a - b),
      Array.from({ length: s.numberOfKeys }, (_, i) => i + 1),
      `${s.name}: every declared key used`,
    );
    // every redis.call's key argument is KEYS[n]: no call takes an ARGV or a built string as its key
    for (const m of code.matchAll(/redis\.call\('([A-Z]+)',\s*([^,)]+)/g)) {
      if (m[1] === 'PUBLISH') continue; // a channel, not a key
      assert.match(m[2], /^KEYS\[(\d+|idx\[.+\])\]$/, `${s.name}: ${m[0]}`);
    }
  }
});
