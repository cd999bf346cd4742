// The same checks as fused.test.ts on the plain-JS 'cpu' backend, where the fused path uses
// tf.split / tf.gather instead of the wasm kernels (wasmKernels.ts).
process.env.TFJS_BACKEND = 'cpu';
await import('./fused.test.js');
