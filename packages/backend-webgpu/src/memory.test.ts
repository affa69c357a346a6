/// <reference types="@webgpu/types" />
/**
 * GPU memory and submission discipline: after every evaluation — finished, or failed mid-run —
 * the tensors, tfjs data ids and GPU buffers in use are back where they were; a quasi-DEER
 * iteration is one queue submission (its dispatches plus the one coalesced read-back).
 * Without an adapter this is skipped visibly, unless PELK_REQUIRE_WEBGPU=1 (CI).
 */
import { type Method, evaluate } from '@pelk/core';
import { failingCell, randomArray, randomGru } from '@pelk/conformance';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { createWebGpuBackend } from './runtime.js';
import type { WebGpuBackend } from './webgpu-backend.js';

const probe = await createWebGpuBackend().then(
  (b) => b,
  (err: Error) => err,
);

const T = 40;
const I = 3;
const inputs = { data: randomArray(T * I, 3), shape: [T, I] };
const { cell } = randomGru(I, 4, 11);
const METHODS: readonly Method[] = ['sequential', 'deer', 'quasi-deer', 'elk', 'quasi-elk'];


if (probe instanceof Error) {
  describe('webgpu memory discipline', () => {
    if (process.env.PELK_REQUIRE_WEBGPU === '1') {
      it('needs a WebGPU adapter (PELK_REQUIRE_WEBGPU=1)', () => {
        throw probe;
      });
    } else {
      it.skip(`skipped: ${probe.message}`, () => {});
    }
  });
} else {
  const backend: WebGpuBackend = probe;
  const gpu = backend.gpu as unknown as { numDataIds(): number; bufferManager: { numUsedBuffers: number } };
  const device = backend.gpu.device;
  afterAll(() => backend.destroy());

  const usage = async () => {
    await device.queue.onSubmittedWorkDone();
    return { tensors: tf.memory().numTensors, dataIds: gpu.numDataIds(), buffers: gpu.bufferManager.numUsedBuffers };
  };

  describe('webgpu memory discipline', { timeout: 300_000 }, () => {
    for (const method of METHODS) {
      it(`${method}: tensors, data ids and GPU buffers return to where they were, on success and on failure`, async () => {
        const before = await usage();
        const result = await evaluate(cell, inputs, { backend, method });
        expect(result.converged).toBe(true);
        expect(tf.memory().numTensors).toBe(before.tensors + 1);
        result.dispose();
        expect(await usage()).toEqual(before);
        await expect(evaluate(failingCell(6, I), inputs, { backend, method })).rejects.toThrow('cell failed');
        expect(await usage()).toEqual(before);
      });
    }

    it('a quasi-DEER iteration is one queue submission', async () => {
      let submits = 0;
      const queue = device.queue;
      const submit = queue.submit.bind(queue);
      queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
        submits++;
        return submit(buffers);
      };
      try {
        const result = await evaluate(cell, inputs, { backend, method: 'quasi-deer' });
        const iterations = result.iterations;
        await result.read();
        result.dispose();
        // Upload and bind, one per iteration, the final read-back.
        expect(submits).toBeLessThanOrEqual(iterations + 3);
      } finally {
        queue.submit = submit;
      }
    });
  });
}
