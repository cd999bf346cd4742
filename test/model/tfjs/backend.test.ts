// initTfjsBackend: the choice, TFJS_BACKEND forcing, and its errors. Each case runs in a child
// process because the backend is chosen once per process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));

function choose(forced: string | undefined): { status: number | null; stdout: string; stderr: string } {
  const script = `
    const { initTfjsBackend } = await import('./src/model/tfjs/backend.ts');
    const lines = [];
    const count = () => process.listeners('uncaughtException').length + process.listeners('unhandledRejection').length;
    const before = count();
    try {
      const name = await initTfjsBackend((l) => lines.push(l));
      console.log(JSON.stringify({ name, lines, addedListeners: count() - before }));
    } catch (e) {
      console.log(JSON.stringify({ error: e.message, lines }));
    }`;
  const env = { ...process.env };
  delete env.TFJS_BACKEND;
  if (forced !== undefined) env.TFJS_BACKEND = forced;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function result(forced: string | undefined): { name?: string; error?: string; lines: string[]; addedListeners?: number } {
  const r = choose(forced);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

test('default choice: a working backend, logged in one line', () => {
  const r = result(undefined);
  assert.ok(r.name && ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].includes(r.name), JSON.stringify(r));
  assert.equal(r.lines.length, 1);
  assert.match(r.lines[0], new RegExp(`tfjs backend ${r.name}`));
});

test('TFJS_BACKEND forces wasm and cpu; the process keeps its own exception handling', () => {
  for (const name of ['wasm', 'cpu']) {
    const r = result(name);
    assert.equal(r.name, name);
    assert.match(r.lines[0], /forced by TFJS_BACKEND/);
    // the wasm loader's rethrowing uncaughtException/unhandledRejection handlers are removed
    assert.equal(r.addedListeners, 0);
  }
});

test('TFJS_BACKEND: an unknown name, or an unavailable backend, is a clear error', () => {
  assert.match(result('bogus').error ?? '', /unknown TFJS_BACKEND 'bogus'/);
  const node = result('tensorflow');
  // where tfjs-node is really installed the forced choice works; elsewhere it must say why not
  if (node.name !== 'tensorflow') assert.match(node.error ?? '', /TFJS_BACKEND=tensorflow but backend tensorflow is unavailable: .*tfjs-node/);
});
