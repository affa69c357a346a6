/**
 * Memory cases beyond the conformance suite's (which runs the default size on every backend, the
 * CPU one included): a size where the D² terms dominate, and a backend without `peakBytes`.
 */
import { CpuBackend } from '@pelk/backend-cpu';
import type { ComputeBackend } from '@pelk/core';
import { describe } from 'vitest';
import { defineMemoryCases } from './memory-cases.js';

describe('memory: cpu', () => {
  const backend = new CpuBackend();
  // A medium size where the D² terms dominate (dense Jacobians of D = 24).
  defineMemoryCases(() => backend, 'float32', { size: [1, 96, 24], iterations: 2 });
});

describe('memory: a backend without peakBytes', () => {
  // Visible skips, with the reason in the title.
  const cpu = new CpuBackend();
  const plain = new Proxy(cpu, {
    get(target, key) {
      if (key === 'resetPeakMemory') return undefined;
      if (key === 'memory') return () => ({ tensors: target.memory().tensors, bytes: target.memory().bytes });
      const v = Reflect.get(target, key);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as ComputeBackend;
  defineMemoryCases(() => plain, 'float64', { size: [1, 8, 4] });
});
