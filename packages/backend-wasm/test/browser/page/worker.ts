/**
 * A Web Worker running the WebAssembly backend on 2 threads (its own Web Workers over a shared
 * memory; `Atomics.wait` is allowed here): quasi-DEER and sequential on the GRU fixture against the
 * float64 oracle, and the threaded kernels against one thread.
 */
import { evaluate } from '@pelk/core';
import { readModelSpec } from '@pelk/models';
import { createWasmBackend } from '../../../src/index.js';

self.onmessage = async (event: MessageEvent<{ fixture: unknown }>) => {
  try {
    const spec = readModelSpec(event.data.fixture);
    const oracle = spec.states!.flat();
    const two = await createWasmBackend({ memoryBytes: 2 ** 27, threads: 2 });
    const checks: { name: string; ok: boolean; detail: string }[] = [];
    for (const method of ['sequential', 'quasi-deer', 'quasi-elk'] as const) {
      const result = await evaluate(spec.cell, spec.inputs, { backend: two, method, dtype: 'float64', tolerance: 1e-11, initialState: spec.initialState ?? undefined });
      const states = await result.read();
      let error = 0;
      for (let i = 0; i < oracle.length; i++) error = Math.max(error, Math.abs(states[i] - oracle[i]));
      result.dispose();
      checks.push({ name: `worker, 2 threads: ${method}`, ok: result.converged && error <= 1e-9, detail: `max error ${error.toExponential(2)}` });
    }
    // The threaded elementwise kernels split a long tensor across the two threads.
    const n = 1 << 18;
    const x = two.fromArray(Float64Array.from({ length: n }, (_, i) => Math.sin(i)), [n], 'float64');
    const sum = two.binary('add', x, x);
    const max = await two.maxAbsDiff(sum, x);
    two.dispose([x, sum]);
    checks.push({ name: 'worker, 2 threads: add and maxAbsDiff split across threads', ok: Math.abs(max - 1) < 1e-6, detail: `max ${max}` });
    (self as unknown as Worker).postMessage({ threads: two.threads, device: two.capabilities.device, checks });
    two.destroy();
  } catch (err) {
    (self as unknown as Worker).postMessage({ error: `${(err as Error).name}: ${(err as Error).message}` });
  }
};
