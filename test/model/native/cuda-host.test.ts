// The CUDA engine without a GPU: its kernels' arithmetic and its training-step schedule, run on the
// CPU by the host harness (native/test/cuda_host_check.cc: every kernel's full grid, thread by
// thread) and compared with the CPU engine — both kinds, 1–3 layers, odd shapes, sequential and
// random sampling, clipping, SGD, the several-minibatches call and the forward-only loss (held-out
// perplexity); the recurrence as per-step cell kernels and as persistent kernels. See
// docs/gpu-engine.md for what only a GPU can check.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BIN = join(ROOT, 'native', 'build-cuda', 'cuda_host_check');
const CPU_SOURCES = ['model_api', 'lstm', 'kernels', 'gemm', 'thread_pool'].map((f) => join(ROOT, 'native', 'src', `${f}.cc`));

const gpp = spawnSync('g++', ['--version']);
const blas =
  existsSync('/usr/include/x86_64-linux-gnu/cblas.h') ||
  existsSync('/usr/include/cblas.h') ||
  existsSync('/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h');
const skip = gpp.status !== 0 ? 'g++ not found' : !blas ? 'OpenBLAS headers not found (libopenblas-dev)' : false;

describe('CUDA engine, host harness (kernels run on the CPU) vs the CPU engine', { skip }, () => {
  let output = '';
  it('builds the harness from the same kernel sources as the GPU build', () => {
    mkdirSync(join(ROOT, 'native', 'build-cuda'), { recursive: true });
    const r = spawnSync(
      'g++',
      [
        '-std=c++17',
        '-O2',
        '-pthread',
        '-Wall',
        '-Wextra',
        '-Wno-unused-parameter',
        '-Werror',
        `-I${join(ROOT, 'native', 'src')}`,
        join(ROOT, 'native', 'test', 'cuda_host_check.cc'),
        ...CPU_SOURCES,
        '-lopenblas',
        '-o',
        BIN,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, `g++ failed:\n${r.stderr}`);
  });

  it('every case agrees within 1e-4 (loss, gradient norm, every gradient, parameters after clipped SGD, several minibatches per call, forward-only loss)', () => {
    const r = spawnSync(BIN, [], { encoding: 'utf8', timeout: 120_000 });
    output = r.stdout;
    const lines = output.split('\n').filter((l) => /^(ok|FAIL) /.test(l));
    for (const l of lines) console.log(l);
    assert.equal(r.status, 0, `harness failed:\n${output}\n${r.stderr}`);
    // the cases the harness must cover: both kinds, multi-layer, odd shapes, both samplings, d2l
    // size — each with the per-step cell kernels and with the persistent kernels
    for (const name of [
      'scratch-small-seq',
      'scratch-odd-random',
      'concise-odd-seq',
      'concise-2layer-seq',
      'concise-3layer-random',
      'scratch-d2l',
      'concise-d2l-2layer',
    ]) {
      for (const recurrence of ['steps', 'persistent']) {
        const line = lines.find((l) => l.startsWith(`ok ${name}/${recurrence}:`));
        assert.ok(line, `case ${name}/${recurrence} ran and passed`);
        // the forward-only loss was checked: same as the CPU engine's and as a step's, weights unchanged
        assert.match(line, /forward-only loss \S+ \(\d+ of a step's \d+ kernels\)/, line);
      }
    }
    assert.ok(!lines.some((l) => l.startsWith('FAIL')));
  });
});
