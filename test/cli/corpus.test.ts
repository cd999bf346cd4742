// `lstm-trainer corpus upload | list | delete` as a user runs them, against a real API over Redis.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deletePrefix, redisReachable, REDIS_URL, runCli } from '../support/processes.js';
import { startTestApi, testEnv, type TestApi } from '../support/service.js';

const cli = (args: string[]) => runCli(args);

const skip = (await redisReachable(REDIS_URL)) ? false : `no Redis at ${REDIS_URL}`;

describe('CLI corpus', { skip }, () => {
  let api: TestApi;
  const env = testEnv();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lstm-cli-corpus-'));
  before(async () => {
    api = await startTestApi(env);
  });
  after(async () => {
    await api?.close();
    await deletePrefix(env.QUEUE_PREFIX);
    rmSync(dir, { recursive: true, force: true });
  });

  it("upload streams a file and prints its id; list shows it; delete removes it; a file that is not UTF-8 is the server's 400, exit 2 (a user error)", async () => {
    const text = 'Es war einmal ein Zeitreisender.\nОн вернулся в 1895 году!\n'.repeat(50);
    const file = path.join(dir, 'text.txt');
    writeFileSync(file, text);
    const up = await cli(['corpus', 'upload', file, '--url', api.url]);
    assert.equal(up.code, 0, up.stderr);
    const id = createHash('sha256').update(text).digest('hex');
    assert.equal(up.stdout.trim(), id);
    assert.match(up.stderr, new RegExp(`corpus uploaded: ${Buffer.byteLength(text)} bytes, ${[...text].length} characters`));
    const list = await cli(['corpus', 'list', '--url', api.url, '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).corpora.map((c: { id: string }) => c.id),
      [id],
    );
    const del = await cli(['corpus', 'delete', id, '--url', api.url]);
    assert.equal(del.code, 0, del.stderr);
    assert.equal((await fetch(`${api.url}/v1/corpora/${id}`)).status, 404);

    const bad = path.join(dir, 'bad.txt');
    writeFileSync(bad, Buffer.from([0x61, 0xff, 0x62]));
    const r = await cli(['corpus', 'upload', bad, '--url', api.url]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /HTTP 400: body: the corpus is not valid UTF-8/);
    assert.equal(r.stdout, '');
  });
});
