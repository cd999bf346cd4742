// The other code paths of the addon, chosen at load time by environment variables: the AVX2 and
// the portable recurrent GEMM kernels (LSTM_NATIVE_GEMM_ISA) and OpenBLAS for the recurrent
// products (LSTM_NATIVE_RECURRENT=blas). Each reruns the gradient and generator tests in a child
// process with the variable set.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadNativeEngine, type NativeInfo } from '../../../src/model/native/index.js';
import { skipNative } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const files = [join(here, 'gradients.test.ts'), join(here, 'generator.test.ts')];

function runWith(vars: Record<string, string>): { info: NativeInfo; output: string; status: number | null } {
  // a child test run, not a subtest of this one (node:test marks its children with NODE_TEST_CONTEXT)
  const env: Record<string, string | undefined> = { ...process.env, ...vars };
  delete env.NODE_TEST_CONTEXT;
  const probe = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      "import('./src/model/native/index.js').then(m => { const r = m.loadNativeEngine(); console.log(JSON.stringify(r.factory.info())); })",
    ],
    {
      cwd: join(here, '..', '..', '..'),
      env,
      encoding: 'utf8',
    },
  );
  const info = JSON.parse(probe.stdout.trim()) as NativeInfo;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...files], { env, encoding: 'utf8' });
  return { info, output: r.stdout + r.stderr, status: r.status };
}

const loaded = loadNativeEngine();
const info = 'factory' in loaded ? loaded.factory.info() : undefined;

describe('native engine code paths', { skip: skipNative }, () => {
  const variants: { name: string; env: Record<string, string>; expect: (i: NativeInfo) => boolean; skip?: string | false }[] = [
    {
      name: 'AVX2 recurrent GEMM kernel',
      env: { LSTM_NATIVE_GEMM_ISA: 'avx2' },
      expect: (i) => i.gemmKernel.startsWith('avx2'),
      skip: info && !/avx2|avx512/.test(info.gemmKernel) ? 'this CPU has no AVX2' : false,
    },
    { name: 'portable recurrent GEMM kernel', env: { LSTM_NATIVE_GEMM_ISA: 'portable' }, expect: (i) => i.gemmKernel.startsWith('portable') },
    { name: 'OpenBLAS for the recurrent products', env: { LSTM_NATIVE_RECURRENT: 'blas' }, expect: (i) => i.recurrentGemm === 'openblas' },
  ];
  for (const v of variants) {
    it(`gradients and generation with the ${v.name}`, { skip: v.skip }, () => {
      const r = runWith(v.env);
      assert.ok(v.expect(r.info), `the variable did not select the path: ${JSON.stringify(r.info)}`);
      assert.equal(r.status, 0, r.output);
      assert.match(r.output, /# fail 0/);
    });
  }
});
