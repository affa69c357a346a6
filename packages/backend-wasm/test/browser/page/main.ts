/**
 * The WebAssembly backend on a browser page (its main thread, where `Atomics.wait` is not allowed:
 * one thread): every method on the shipped GRU and LSTM fixtures against their float64 oracles,
 * on the fused kernels and op by op, and the refusal of more threads, named. On a
 * cross-origin-isolated page, a Web Worker also runs the backend on 2 threads (worker.ts).
 */
import { evaluate } from '@pelk/core';
import { readModelSpec } from '@pelk/models';
import { createWasmBackend } from '../../../src/index.js';

interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

async function run(): Promise<{ threads: number; device: string; checks: Check[] }> {
  const backend = await createWasmBackend({ memoryBytes: 2 ** 27 });
  const checks: Check[] = [];
  for (const name of ['gru-torch-small', 'lstm-torch-small']) {
    const spec = readModelSpec(await (await fetch(`/fixtures/${name}.json`)).json());
    const oracle = spec.states!.flat();
    for (const method of ['sequential', 'quasi-deer', 'deer', 'quasi-elk', 'elk'] as const) {
      for (const fused of [true, false]) {
        const result = await evaluate(spec.cell, spec.inputs, { backend, method, dtype: 'float64', tolerance: 1e-11, fused, initialState: spec.initialState ?? undefined });
        const states = await result.read();
        let error = 0;
        for (let i = 0; i < oracle.length; i++) error = Math.max(error, Math.abs(states[i] - oracle[i]));
        result.dispose();
        const ok = result.converged && error <= 1e-9 && result.diagnostics.fused === fused && backend.memory().tensors === 0;
        checks.push({ name: `${name} ${method}${fused ? '' : ' (op by op)'}`, ok, detail: `converged ${result.converged}, max error ${error.toExponential(2)}, fused ${result.diagnostics.fused}` });
      }
    }
  }
  const refused = await createWasmBackend({ memoryBytes: 2 ** 24, threads: 2 }).then(
    () => 'created',
    (err: Error) => `${err.name}: ${err.message}`,
  );
  checks.push({ name: 'threads: 2 refused on a page', ok: /BackendUnavailableError: .*2 threads need/s.test(refused), detail: refused });
  return { threads: backend.threads, device: backend.capabilities.device, checks };
}

/** Runs the 2-thread checks in a Web Worker (a cross-origin-isolated page gives it SharedArrayBuffer). */
async function runWorker(): Promise<unknown> {
  const fixture = await (await fetch('/fixtures/gru-torch-small.json')).json();
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  try {
    return await new Promise((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage({ fixture });
    });
  } finally {
    worker.terminate();
  }
}

(window as unknown as Record<string, unknown>).__pelkWasmChecks = run;
(window as unknown as Record<string, unknown>).__pelkWasmWorkerChecks = runWorker;
(window as unknown as Record<string, unknown>).__pelkIsolated = () => globalThis.crossOriginIsolated === true;
