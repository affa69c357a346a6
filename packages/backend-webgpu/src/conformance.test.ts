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
    // Every method, dense ELK included: its Kalman passes are pelk's WGSL kernels (6 dispatches
    // for filter and smoother; before them, thousands of tfjs dispatches per iteration kept ELK
    // out of this run).
    methods: ['sequential', 'deer', 'quasi-deer', 'elk', 'quasi-elk'],
    // SwiftShader runs every dispatch on the CPU: per-step sequential runs are slow.
    timeoutMs: 600_000,
  });
}
