/**
 * Side-effect entry: registers the WebAssembly backend as `'wasm'` (priority 5: above `'cpu'`,
 * below the GPU backends). Where WebAssembly SIMD is missing, its factory rejects with a
 * `BackendUnavailableError` and `auto` selection moves on to `'cpu'`.
 *
 * @example
 * ```ts
 * import '@pelk/backend-cpu/register';
 * import '@pelk/backend-wasm/register';
 * const result = await evaluate(cell, inputs); // runs on 'wasm'
 * ```
 */
import { registerBackend } from '@pelk/core';
import { createWasmBackend } from './wasm-backend.js';

registerBackend('wasm', () => createWasmBackend(), 5);
