/** The conformance suite on the WebAssembly backend, float64 and float32, on one thread and on two. */
import { defineConformanceSuite } from '@pelk/conformance';
import { createWasmBackend } from './wasm-backend.js';

for (const threads of [1, 2]) {
  defineConformanceSuite({
    name: `wasm, ${threads} thread${threads > 1 ? 's' : ''}`,
    createBackend: () => createWasmBackend({ memoryBytes: 2 ** 31, threads }),
    destroyBackend: (backend) => (backend as Awaited<ReturnType<typeof createWasmBackend>>).destroy(),
    timeoutMs: 300_000,
  });
}
