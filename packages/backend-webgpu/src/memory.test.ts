/// <reference types="@webgpu/types" />
/**
 * GPU memory and submission discipline: after every evaluation — finished, or failed mid-run —
 * the tensors, tfjs data ids and GPU buffers in use are back where they were; a quasi-DEER
 * iteration is one queue submission (its dispatches plus the one coalesced read-back).
 * Without an adapter this is skipped visibly, unless PELK_REQUIRE_WEBGPU=1 (CI).
 */
import { MIN_TOLERANCE, type Method, evaluate } from '@pelk/core';
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
        const result = await evaluate(cell, inputs, { backend, method: 'quasi-deer', lyapunov: false });
        const iterations = result.iterations;
        await result.read();
        result.dispose();
        // Upload and bind, one per iteration, the final read-back.
        expect(submits).toBeLessThanOrEqual(iterations + 3);
        // The Lyapunov estimate (on by default) adds its two scans' read-backs and the check of its
        // Jacobians — a few submissions per evaluation, not per iteration.
        submits = 0;
        const estimated = await evaluate(cell, inputs, { backend, method: 'quasi-deer' });
        expect(estimated.diagnostics.lyapunov).toBeDefined();
        await estimated.read();
        estimated.dispose();
        expect(submits).toBeLessThanOrEqual(estimated.iterations + 3 + 4);
      } finally {
        queue.submit = submit;
      }
    });
  });

  describe('webgpu: dispatches and submissions per iteration (diagnostics.device)', { timeout: 300_000 }, () => {
    // T = 1000: the diagonal scan has one reduce level (2·1 + 1 dispatches at chunk 32), the dense
    // scan two (2·2 + 1 at chunk 16). An iteration is the scan, one update dispatch
    // (applyCorrection) and one fused linearisation, read back in one submission.
    const steps = 1000;
    const x = { data: randomArray(steps * I, 5), shape: [steps, I] };
    const { cell: gru16 } = randomGru(I, 16, 31);
    it('a submission mid-iteration (tfjs submits every few dispatches) frees no scalar before its read-back', async () => {
      // Regression: applyCorrection's counters, created inside the solver's tidy, were freed by the
      // tidy and then released by the next submission before their coalesced read.
      const before = tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE');
      tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', 1);
      try {
        for (const method of ['quasi-deer', 'deer', 'elk', 'quasi-elk'] as const) {
          const result = await evaluate(gru16, x, { backend, method, lyapunov: false });
          expect(result.converged, method).toBe(true);
          result.dispose();
        }
      } finally {
        tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', before);
      }
    });
    for (const [method, most] of [['quasi-deer', 6], ['deer', 8]] as const) {
      it(`${method} on a GRU (T = ${steps}, D = 16): at most ${most} dispatches and one submission per iteration`, async () => {
        const result = await evaluate(gru16, x, { backend, method, lyapunov: false, tolerance: MIN_TOLERANCE.float32 });
        result.dispose();
        const device = result.diagnostics.device;
        console.info(`webgpu ${method} (T=${steps}, D=16, ${result.iterations} iterations): ${JSON.stringify(device)}`);
        expect(result.diagnostics.fused).toBe(true);
        expect(result.iterations).toBeGreaterThanOrEqual(3);
        expect(device?.perIteration?.dispatches).toBeLessThanOrEqual(most);
        expect(device?.perIteration?.submissions).toBe(1);
        expect(device?.dispatches).toBeGreaterThan(0);
      });
    }
  });

  describe('webgpu: 1,000 evaluations', { timeout: 900_000 }, () => {
    it('leave tensors, data ids and GPU buffers at their baseline, failing and aborted ones included', async () => {
      const steps = 12;
      const x = { data: randomArray(steps * I, 51), shape: [steps, I] };
      const before = await usage();
      const outcomes = { converged: 0, failed: 0, aborted: 0 };
      for (let n = 0; n < 1000; n++) {
        const method = METHODS[n % METHODS.length];
        const parallel = method === 'sequential' ? 'quasi-deer' : method;
        const kind = n % 10;
        if (kind === 7) {
          // A failure inside the fused path: the iteration callback throws.
          const run = evaluate(cell, x, { backend, method: parallel, lyapunov: false, onIteration: () => { throw new Error('callback failed'); } });
          await expect(run).rejects.toThrow('callback failed');
          outcomes.failed++;
        } else if (kind === 8) {
          await expect(evaluate(failingCell(4, I), x, { backend, method, lyapunov: false })).rejects.toThrow('cell failed');
          outcomes.failed++;
        } else if (kind === 9) {
          const controller = new AbortController();
          const run = evaluate(cell, x, { backend, method: parallel, lyapunov: false, tolerance: MIN_TOLERANCE.float32, signal: controller.signal, onIteration: () => controller.abort() });
          await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
          outcomes.aborted++;
        } else {
          const result = await evaluate(cell, x, { backend, method, lyapunov: false });
          expect(result.converged).toBe(true);
          result.dispose();
          outcomes.converged++;
        }
      }
      expect(outcomes).toEqual({ converged: 700, failed: 200, aborted: 100 });
      expect(await usage()).toEqual(before);
      const pool = backend.poolUsage();
      expect(pool.freeBuffers).toBeLessThanOrEqual(2);
    });
  });

  describe('webgpu: the dense Kalman passes', { timeout: 300_000 }, () => {
    it('are 3 dispatches for the filter and 6 with the smoother, whatever T', async () => {
      const D = 3;
      for (const T of [7, 500]) {
        const F = backend.fromArray(randomArray(T * D * D, 41, 0.4), [1, T, D, D], 'float32');
        const bias = backend.fromArray(randomArray(T * D, 42), [1, T, D], 'float32');
        const y = backend.fromArray(randomArray(T * D, 43), [1, T, D], 'float32');
        const init = backend.fromArray(randomArray(D, 44), [1, D], 'float32');
        const model = { transition: F, bias, observation: y, init, processVariance: 1, observationVariance: 0.5 };
        for (const smooth of [false, true]) {
          const before = backend.deviceCounters().dispatches;
          const out = backend.kalmanDense(model, { smooth });
          expect(backend.deviceCounters().dispatches - before, `T = ${T}, smooth: ${smooth}`).toBe(smooth ? 6 : 3);
          await backend.read(out.mean);
          backend.dispose([out.mean, out.covariance]);
        }
        backend.dispose([F, bias, y, init]);
      }
    });
  });

  describe('webgpu: the scan layouts', { timeout: 300_000 }, () => {
    it('staged and direct scans give the same quasi-DEER and quasi-ELK trajectories as sequential; an unknown layout is refused', async () => {
      const flat = (x: number[][] | number[][][]) => (x as number[][]).flat();
      const seq = await evaluate(cell, inputs, { backend, method: 'sequential' });
      const want = flat(await seq.toArray());
      seq.dispose();
      const scale = Math.max(1, ...want.map(Math.abs));
      const before = backend.scanLayout;
      try {
        for (const layout of ['staged', 'direct'] as const) {
          backend.scanLayout = layout;
          for (const method of ['quasi-deer', 'quasi-elk'] as const) {
            const result = await evaluate(cell, inputs, { backend, method, lyapunov: false, tolerance: MIN_TOLERANCE.float32 });
            const got = flat(await result.toArray());
            result.dispose();
            expect(result.converged, `${method} ${layout}`).toBe(true);
            const err = Math.max(...got.map((v, i) => Math.abs(v - want[i])));
            console.info(`webgpu ${layout} ${method}: max |Δ| vs sequential ${err.toExponential(2)} (${result.iterations} iterations)`);
            // Converged to a residual of 2⁻²⁰ per step; a small random GRU amplifies it by well
            // under 16 over 40 steps, so the trajectories agree to 2⁻¹⁶ of the largest state.
            expect(err, `${method} ${layout}`).toBeLessThan(2 ** -16 * scale);
          }
        }
      } finally {
        backend.scanLayout = before;
      }
      expect(() => {
        backend.scanLayout = 'fast' as never;
      }).toThrow(/scanLayout.*'auto', 'staged' or 'direct'.*fast/s);
      expect(backend.scanLayout).toBe(before);
    });
  });

  describe('webgpu buffer pool: released when an evaluation ends', { timeout: 300_000 }, () => {
    it('100 evaluations of changing sizes leave no pooled buffers behind', async () => {
      await device.queue.onSubmittedWorkDone();
      backend.trim();
      const start = backend.poolUsage();
      let peakFree = 0;
      let peakBytes = 0;
      const watch = () => {
        const u = backend.poolUsage();
        peakFree = Math.max(peakFree, u.freeBuffers);
        peakBytes = Math.max(peakBytes, u.allocatedBytes);
      };
      const methods: readonly Method[] = ['quasi-deer', 'deer', 'quasi-elk', 'sequential'];
      for (let n = 0; n < 100; n++) {
        // A new T every time: an untrimmed pool keeps one set of buffers per size it has seen.
        const steps = 20 + n;
        const x = { data: randomArray(steps * I, 1000 + n), shape: [steps, I] };
        const result = await evaluate(cell, x, { backend, method: methods[n % methods.length], onIteration: watch, progressEvery: 8 });
        await result.read();
        result.dispose();
      }
      await device.queue.onSubmittedWorkDone();
      const end = backend.poolUsage();
      console.info(
        `webgpu pool after 100 evaluations: ${end.freeBuffers} free buffers, ${end.allocatedBytes - end.usedBytes} free bytes ` +
          `(${end.usedBuffers} buffers / ${end.usedBytes} bytes in use, as before: ${start.usedBuffers} / ${start.usedBytes}); ` +
          `during the runs up to ${peakFree} free buffers, ${peakBytes} bytes allocated`,
      );
      // What is left: at most the last result's buffer and its read-back staging buffer, freed
      // after the last trim (the next evaluation's trim releases them).
      expect(end.freeBuffers).toBeLessThanOrEqual(2);
      expect(end.allocatedBytes - end.usedBytes).toBeLessThanOrEqual(2 * 4 * 119 * 4);
      expect(end.usedBuffers).toBe(start.usedBuffers);
      expect(end.usedBytes).toBe(start.usedBytes);
      // The pool did serve the iterations.
      expect(peakFree).toBeGreaterThan(0);
      backend.trim();
      expect(backend.poolUsage().freeBuffers).toBe(0);
    });

    it('releasePooledBuffers(cap) keeps at most cap bytes of free buffers; trim() the default (none)', async () => {
      backend.trim();
      const base = backend.poolUsage();
      // Free buffers of many sizes: tensors created, used and disposed.
      for (let k = 1; k <= 40; k++) {
        const t = tf.tidy(() => tf.add(tf.fill([k * 64], 1), 1));
        await t.data();
        t.dispose();
      }
      await device.queue.onSubmittedWorkDone();
      const filled = backend.poolUsage();
      expect(filled.freeBuffers).toBeGreaterThanOrEqual(40);
      const cap = 16 * 1024;
      backend.releasePooledBuffers(cap);
      const capped = backend.poolUsage();
      expect(capped.allocatedBytes - capped.usedBytes).toBeLessThanOrEqual(cap);
      expect(capped.freeBuffers).toBeGreaterThan(0);
      expect(capped.freeBuffers).toBeLessThan(filled.freeBuffers);
      // Buffers still work after a trim: tfjs allocates new ones.
      const again = tf.tidy(() => tf.add(tf.fill([640], 2), 1));
      expect(Array.from((await again.data()) as Float32Array).every((v) => v === 3)).toBe(true);
      again.dispose();
      backend.trim();
      const trimmed = backend.poolUsage();
      expect(trimmed.freeBuffers).toBe(0);
      expect(trimmed.allocatedBytes).toBe(trimmed.usedBytes);
      expect(trimmed.usedBuffers).toBe(base.usedBuffers);
    });
  });

  describe('webgpu: a timer-fired abort', { timeout: 300_000 }, () => {
    it('ends a quasi-DEER run at its next iteration boundary, every tensor and buffer released', async () => {
      // Weights ×3: quasi-DEER needs far more iterations than the abort leaves it.
      const { cell: slow } = randomGru(I, 16, 21, 3);
      const steps = 4000;
      const x = { data: randomArray(steps * I, 22), shape: [steps, I] };
      const opts = { backend, method: 'quasi-deer' as const, tolerance: MIN_TOLERANCE.float32 };
      // One iteration's duration, measured: the longest of a few iterations.
      const stamps: number[] = [];
      const probe = await evaluate(slow, x, { ...opts, maxIterations: 5, onIteration: (i) => stamps.push(i.elapsedMs) });
      probe.dispose();
      expect(stamps.length).toBe(5);
      const iterationMs = Math.max(...stamps.slice(1).map((t, k) => t - stamps[k]));

      const before = await usage();
      const controller = new AbortController();
      const delay = Math.round(3.5 * iterationMs);
      const started = performance.now();
      let firedAt = 0;
      const timer = setTimeout(() => {
        firedAt = performance.now();
        controller.abort();
      }, delay);
      // The iterations of this run too: under load (test files run in parallel) they can take longer than the probe's.
      const during: number[] = [];
      const outcome = await evaluate(slow, x, { ...opts, maxIterations: 10_000, signal: controller.signal, onIteration: () => during.push(performance.now()) }).then(
        (r) => {
          r.dispose();
          return null;
        },
        (e: unknown) => e,
      );
      const ended = performance.now();
      clearTimeout(timer);
      const latency = ended - (started + delay);
      const longest = Math.max(iterationMs, ...during.slice(1).map((t, k) => t - during[k]));
      console.info(
        `webgpu quasi-DEER (T=${steps}, D=16): iteration ${iterationMs.toFixed(1)} ms (longest in the aborted run ${longest.toFixed(1)} ms); abort due at ${delay} ms, timer ran ${(firedAt - started - delay).toFixed(1)} ms late, AbortError ${latency.toFixed(1)} ms after due`,
      );
      expect(outcome, 'the run ended before the abort').toMatchObject({ code: 'ABORTED' });
      // Seen at the next iteration boundary: one iteration, with the conformance suite's allowance for
      // scheduling jitter on a loaded machine (its abort cases use the same bound).
      expect(latency, `AbortError ${latency.toFixed(1)} ms after the timer was due; one iteration takes up to ${longest.toFixed(1)} ms`).toBeLessThanOrEqual(1.5 * longest + 50);
      expect(await usage()).toEqual(before);
      // The aborted evaluation's trim released the pool too.
      const pool = backend.poolUsage();
      expect(pool.freeBuffers).toBe(0);
      expect(pool.allocatedBytes).toBe(pool.usedBytes);
    });
  });
}
