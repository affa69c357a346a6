/**
 * Memory discipline on TensorFlow.js: after `evaluate` returns, `tf.memory().numTensors` is what it
 * was before plus the result's one tensor (its states), for every method — and exactly what it was
 * before when the run throws (aborted, a cell that fails mid-run, or an `onIteration` callback that fails).
 */
import { type Method, evaluate } from '@pelk/core';
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
      // The fused sequential kernel (GRU on tfjs cpu) reports no progress, so it finishes instead.
      const outcome = await failing.then(
        (r) => {
          r.dispose();
          return 'finished';
        },
        (e: Error) => e.message,
      );
      expect(outcome).toBe(method === 'sequential' || method === 'auto' ? 'finished' : 'callback failed');
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});
