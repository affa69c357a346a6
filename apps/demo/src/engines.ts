/**
 * Where a run executes: WebGPU on the page (its work is asynchronous, so the page stays
 * responsive), or the CPU backend in a Web Worker. Both take the same settings and report the
 * same events (`runner.ts`).
 */

import type { FromWorker, ToWorker } from './protocol.js';
import type { MethodSummary, RunEvent } from './runner.js';
import type { Settings } from './settings.js';

export interface Engine {
  readonly kind: 'webgpu' | 'cpu';
  /** False once the engine can no longer run (its worker died): the page starts a new one. */
  readonly alive: boolean;
  /** The backend's name (`webgpu`, `wasm`, `cpu`). */
  readonly backend: string;
  /** The device it runs on, in words. */
  readonly device: string;
  run(settings: Settings, emit: (e: RunEvent) => void, signal: AbortSignal): Promise<MethodSummary[]>;
  /** Releases the backend (GPU device, or the worker and its memory). */
  dispose(): Promise<void>;
}

/** The error a run rejects with when it was cancelled before it reached the backend. */
export const cancelled = () => new EngineError('AbortError', 'cancelled before the run started');

/** An error from the engine, with the name it had where it was thrown (`AbortError`, `ResourceLimitError`, …). */
export class EngineError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** Why WebGPU is unavailable here, or `null` when an adapter exists. */
export async function webGpuUnavailable(): Promise<string | null> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return 'this browser has no WebGPU (navigator.gpu is missing)';
  try {
    return (await gpu.requestAdapter()) ? null : 'navigator.gpu found no adapter';
  } catch (err) {
    return `navigator.gpu failed: ${(err as Error).message}`;
  }
}

/** WebGPU on the page. */
export async function webGpuEngine(): Promise<Engine> {
  const [{ createWebGpuBackend }, { runMethods }] = await Promise.all([import('@pelk/backend-webgpu'), import('./runner.js')]);
  const backend = await createWebGpuBackend();
  return {
    kind: 'webgpu',
    alive: true,
    backend: backend.name,
    device: backend.capabilities.device,
    run: (settings, emit, signal) => (signal.aborted ? Promise.reject(cancelled()) : runMethods(backend, settings, emit, signal)),
    dispose: () => backend.destroy().catch(() => undefined),
  };
}

/** The CPU backend in a Web Worker. */
export async function cpuEngine(): Promise<Engine> {
  const worker = new Worker(new URL('./cpu-worker.ts', import.meta.url), { type: 'module' });
  const hello = await new Promise<Extract<FromWorker, { kind: 'ready' }>>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<FromWorker>) => {
      if (e.data.kind === 'ready') resolve(e.data);
      else if (e.data.kind === 'error') reject(new EngineError(e.data.name, e.data.message));
    };
    worker.onerror = (e) => reject(new Error(`the CPU worker failed to start: ${e.message}`));
  });
  let next = 0;
  let alive = true;
  /** The run in flight: rejected if the worker dies under it. */
  let pending: ((err: Error) => void) | null = null;
  const died = (why: string) => {
    alive = false;
    pending?.(new EngineError('WorkerError', `the CPU worker stopped: ${why}`));
  };
  worker.onerror = (e) => died(e.message || 'an uncaught error');
  worker.onmessageerror = () => died('a message could not be read');
  const send = (m: ToWorker) => worker.postMessage(m);
  return {
    kind: 'cpu',
    get alive() {
      return alive;
    },
    backend: hello.backend,
    device: hello.device,
    run(settings, emit, signal) {
      if (signal.aborted) return Promise.reject(cancelled());
      if (!alive) return Promise.reject(new EngineError('WorkerError', 'the CPU worker has stopped'));
      const id = ++next;
      return new Promise((resolve, reject) => {
        const cancel = () => send({ kind: 'cancel', id });
        const settle = () => {
          signal.removeEventListener('abort', cancel);
          pending = null;
        };
        signal.addEventListener('abort', cancel, { once: true });
        pending = (err) => {
          settle();
          reject(err);
        };
        worker.onmessage = (e: MessageEvent<FromWorker>) => {
          const m = e.data;
          if (m.kind === 'ready' || m.id !== id) return;
          if (m.kind === 'event') emit(m.event);
          else {
            settle();
            if (m.kind === 'done') resolve(m.rows);
            else reject(new EngineError(m.name, m.message));
          }
        };
        send({ kind: 'run', id, settings });
      });
    },
    dispose: async () => {
      alive = false;
      worker.terminate();
    },
  };
}
