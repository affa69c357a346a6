/**
 * Memory discipline on TensorFlow.js: after `evaluate` returns, `tf.memory().numTensors` is what it
 * was before plus the result's one tensor (its states), for every method — and exactly what it was
 * before when the run throws (aborted, a cell that fails mid-run, or an `onIteration` callback that fails).
 */
import { MIN_TOLERANCE, type Method, evaluate } from '@pelk/core';
import { failingCell, randomArray, randomGru } from '@pelk/conformance';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { createTfjsBackend } from './runtime.js';
import type { TfjsBackend } from './tfjs-backend.js';

const METHODS: readonly Method[] = ['sequential', 'deer', 'quasi-deer', 'elk', 'quasi-elk', 'auto'];
const T = 40;
const I = 3;
const inputs = { data: randomArray(T * I, 3), shape: [T, I] };
// The sequential method checks for an abort every 1,024 steps: its aborted run needs more steps.
const longInputs = { data: randomArray(1100 * I, 4), shape: [1100, I] };

const { cell } = randomGru(I, 4, 11);

describe('tfjs memory discipline (tf.memory().numTensors)', () => {
  let backend: TfjsBackend;
  beforeAll(async () => {
    backend = await createTfjsBackend({ backend: 'cpu' });
  });

  for (const method of METHODS) {
    it(`${method}: the result's tensor is the only one left, and none after dispose`, async () => {
      const before = tf.memory().numTensors;
      const result = await evaluate(cell, inputs, { backend, method });
      expect(result.converged).toBe(true);
      expect(tf.memory().numTensors).toBe(before + 1);
      result.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    it(`${method}: nothing is left when the run throws`, async () => {
      const before = tf.memory().numTensors;
      const controller = new AbortController();
      const aborted = evaluate(failingCell(Number.POSITIVE_INFINITY), method === 'sequential' || method === 'auto' ? longInputs : inputs, {
        backend,
        method,
        signal: controller.signal,
        onIteration: (i) => (i.fraction !== undefined || i.iteration >= 2) && controller.abort(),
        progressEvery: 8,
      });
      await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
      expect(tf.memory().numTensors).toBe(before);
      await expect(evaluate(failingCell(5), inputs, { backend, method })).rejects.toThrow('cell failed');
      expect(tf.memory().numTensors).toBe(before);
      const failing = evaluate(cell, inputs, {
        backend,
        method,
        progressEvery: 8,
        onIteration: () => {
          throw new Error('callback failed');
        },
      });
      // Every method reports progress, the fused sequential kernel (GRU on tfjs cpu) included: it
      // advances in slices of `progressEvery` steps and calls `onIteration` between them.
      const outcome = await failing.then(
        (r) => {
          r.dispose();
          return 'finished';
        },
        (e: Error) => e.message,
      );
      expect(outcome).toBe('callback failed');
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});

/**
 * Abort latency on tfjs's `wasm` backend: an `AbortSignal` fired by a timer (not from
 * `onIteration`) ends a quasi-DEER run at the next iteration boundary — evaluations yield to the
 * event loop between iterations — so the `AbortError` arrives within one iteration's time of the
 * timer being due, with every tensor released.
 */
describe('tfjs wasm: a timer-fired abort', () => {
  it('ends a quasi-DEER run within one iteration, every tensor released', { timeout: 120_000 }, async () => {
    const backend = await createTfjsBackend({ backend: 'wasm' });
    await backend.activate();
    // Weights ×3: quasi-DEER needs far more iterations than the abort leaves it.
    const { cell: slow } = randomGru(I, 16, 21, 3);
    const steps = 20_000;
    const x = { data: randomArray(steps * I, 22), shape: [steps, I] };
    const opts = { backend, method: 'quasi-deer' as const, tolerance: MIN_TOLERANCE.float32 };
    // One iteration's duration, measured: the longest of a few iterations.
    const stamps: number[] = [];
    const probe = await evaluate(slow, x, { ...opts, maxIterations: 5, onIteration: (i) => stamps.push(i.elapsedMs) });
    probe.dispose();
    expect(stamps.length).toBe(5);
    const iterationMs = Math.max(...stamps.slice(1).map((t, k) => t - stamps[k]));

    const before = tf.memory().numTensors;
    const controller = new AbortController();
    const delay = Math.round(3.5 * iterationMs);
    const started = performance.now();
    let firedAt = 0;
    const timer = setTimeout(() => {
      firedAt = performance.now();
      controller.abort();
    }, delay);
    const outcome = await evaluate(slow, x, { ...opts, maxIterations: 10_000, signal: controller.signal }).then(
      (r) => {
        r.dispose();
        return null;
      },
      (e: unknown) => e,
    );
    const ended = performance.now();
    clearTimeout(timer);
    const latency = ended - (started + delay);
    console.info(
      `tfjs-wasm quasi-DEER (T=${steps}, D=16): iteration ${iterationMs.toFixed(1)} ms; abort due at ${delay} ms, timer ran ${(firedAt - started - delay).toFixed(1)} ms late, AbortError ${latency.toFixed(1)} ms after due`,
    );
    expect(outcome, 'the run ended before the abort').toMatchObject({ code: 'ABORTED' });
    expect(latency, `AbortError ${latency.toFixed(1)} ms after the timer was due; one iteration takes ${iterationMs.toFixed(1)} ms`).toBeLessThanOrEqual(iterationMs);
    expect(tf.memory().numTensors).toBe(before);
  });
});
