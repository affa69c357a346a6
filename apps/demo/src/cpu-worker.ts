/**
 * The CPU backend in a Web Worker, so a long evaluation never freezes the page: the WebAssembly
 * backend (SIMD; threads when the page is cross-origin isolated), or the plain TypeScript one
 * where WebAssembly cannot start. Runs one request at a time; `cancel` aborts it.
 */
import { CpuBackend } from '@pelk/backend-cpu';
import { createWasmBackend } from '@pelk/backend-wasm';
import type { ComputeBackend } from '@pelk/core';
import type { FromWorker, ToWorker } from './protocol.js';
import { runMethods } from './runner.js';

const post = (message: FromWorker) => (self as unknown as Worker).postMessage(message);

async function createBackend(): Promise<ComputeBackend> {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const threads = isolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  try {
    return await createWasmBackend({ threads, memoryBytes: 2 ** 30 });
  } catch {
    return new CpuBackend();
  }
}

const ready = createBackend().then(
  (backend) => {
    post({ kind: 'ready', backend: backend.name, device: backend.capabilities.device });
    return backend;
  },
  (err: Error) => {
    post({ kind: 'error', id: null, name: err.name, message: err.message });
    throw err;
  },
);

const controllers = new Map<number, AbortController>();

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.kind === 'cancel') {
    controllers.get(message.id)?.abort();
    return;
  }
  const controller = new AbortController();
  controllers.set(message.id, controller);
  try {
    const backend = await ready;
    const rows = await runMethods(backend, message.settings, (e) => post({ kind: 'event', id: message.id, event: e }), controller.signal);
    post({ kind: 'done', id: message.id, rows });
  } catch (err) {
    post({ kind: 'error', id: message.id, name: (err as Error).name, message: (err as Error).message });
  } finally {
    controllers.delete(message.id);
  }
};
