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
  // SwiftShader runs each dispatch on the CPU: the dense-ELK fixture runs need a long limit.
  defineConformanceSuite({ name: 'webgpu', createBackend: () => backend, dtypes: ['float32'], timeoutMs: 600_000, destroyBackend: (b) => (b as WebGpuBackend).destroy() });
}
