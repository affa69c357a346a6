/// <reference types="@webgpu/types" />
/**
 * The conformance suite on WebGPU (Dawn in Node; SwiftShader where there is no GPU). The kernels'
 * own tests (kernels/kernels.test.ts) force tiny chunks so every reduce level runs. Without an adapter the suite is skipped visibly, unless
 * PELK_REQUIRE_WEBGPU=1 (CI), which makes that a failure.
 */
import { defineConformanceSuite } from '@pelk/conformance';
import { describe, it } from 'vitest';
import { createWebGpuBackend } from './runtime.js';
import type { WebGpuBackend } from './webgpu-backend.js';

const probe = await createWebGpuBackend().then(
  (b) => b,
  (err: Error) => err,
);
const unavailable = probe instanceof Error ? probe.message : null;

if (unavailable !== null) {
  describe('conformance: webgpu', () => {
    if (process.env.PELK_REQUIRE_WEBGPU === '1') {
      it('needs a WebGPU adapter (PELK_REQUIRE_WEBGPU=1)', () => {
        throw new Error(unavailable);
      });
    } else {
      it.skip(`skipped: ${unavailable}`, () => {});
    }
  });
} else {
  const backend = probe as WebGpuBackend;
  defineConformanceSuite({
    name: 'webgpu',
    createBackend: () => backend,
    destroyBackend: (b) => (b as WebGpuBackend).destroy(),
    dtypes: ['float32'],
    // Every method but dense ELK. Its Kalman passes are the tfjs tensor programs shared with
    // @pelk/backend-tfjs-node (conformance-tested there on every method), and the dense
    // Kalman primitive itself is still checked here against the sequential filter/smoother; but a
    // full ELK solve is thousands of small dispatches per iteration, ~200 s per fixture on
    // SwiftShader (measured: gru-torch-small, 10 iterations, 202 s).
    methods: ['sequential', 'deer', 'quasi-deer', 'quasi-elk'],
    // SwiftShader runs every dispatch on the CPU: per-step sequential runs are slow.
    timeoutMs: 600_000,
  });
}
