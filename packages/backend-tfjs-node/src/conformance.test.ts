/** The conformance suite on TensorFlow.js's `cpu` and `wasm` backends (float32). */
import { defineConformanceSuite } from '@pelk/conformance';
import { createTfjsBackend } from './runtime.js';

for (const tfBackend of ['cpu', 'wasm'] as const) {
  defineConformanceSuite({
    name: `tfjs-${tfBackend}`,
    createBackend: () => createTfjsBackend({ backend: tfBackend }),
    dtypes: ['float32'],
    timeoutMs: 300_000,
    // tfjs's cpu backend runs each op with a high fixed cost: its AR-GRU cases take about 2.5 minutes.
    ...(tfBackend === 'cpu' ? { slowArGru: "dense ELK and DEER on tfjs's cpu backend take about 2.5 minutes here" } : {}),
  });
}
