/// <reference types="@webgpu/types" />
/**
 * A device lost mid-run (driver reset, `device.destroy()`) ends the evaluation with a typed error,
 * and the backend refuses further work with the same. Its own file: the device does not survive it.
 * Without an adapter this is skipped visibly, unless PELK_REQUIRE_WEBGPU=1 (CI).
 */
import { MIN_TOLERANCE, evaluate } from '@pelk/core';
import { randomArray, randomGru } from '@pelk/conformance';
import { describe, expect, it } from 'vitest';
import { createWebGpuBackend } from './runtime.js';

const probe = await createWebGpuBackend().then(
  (b) => b,
  (err: Error) => err,
);

describe('webgpu: device loss', { timeout: 300_000 }, () => {
  const title = 'a device lost mid-run ends the evaluation with a BACKEND_UNAVAILABLE error; later calls refuse';
  if (probe instanceof Error) {
    if (process.env.PELK_REQUIRE_WEBGPU === '1') {
      it(title, () => {
        throw probe;
      });
    } else it.skip(`${title} — skipped: ${probe.message}`, () => {});
  } else {
    defineLossCase(title, probe);
  }
});

function defineLossCase(title: string, backend: Exclude<typeof probe, Error>): void {
  it(title, async () => {
    const T = 400;
    const { cell } = randomGru(3, 8, 61, 3);
    const inputs = { data: randomArray(T * 3, 62), shape: [T, 3] };
    const run = evaluate(cell, inputs, {
      backend,
      method: 'quasi-deer',
      tolerance: MIN_TOLERANCE.float32,
      maxIterations: 10_000,
      onIteration: (i) => {
        if (i.iteration === 2) backend.gpu.device.destroy();
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
    await backend.gpu.device.lost;
    expect(() => backend.fromArray([1], [1], 'float32')).toThrow(/device was lost/);
  });
}
