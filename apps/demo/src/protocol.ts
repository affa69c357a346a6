/** Messages between the page and the CPU backend's Web Worker (`cpu-worker.ts`). */
import type { MethodSummary, RunEvent } from './runner.js';
import type { Settings } from './settings.js';

/** Page → worker. */
export type ToWorker = { readonly kind: 'run'; readonly id: number; readonly settings: Settings } | { readonly kind: 'cancel'; readonly id: number };

/** Worker → page. */
export type FromWorker =
  | { readonly kind: 'ready'; readonly backend: string; readonly device: string }
  | { readonly kind: 'event'; readonly id: number; readonly event: RunEvent }
  | { readonly kind: 'done'; readonly id: number; readonly rows: MethodSummary[] }
  | { readonly kind: 'error'; readonly id: number | null; readonly name: string; readonly message: string };
