/**
 * Side-effect entry: registers the TensorFlow.js backend as `'tfjs'` (priority 10, above the CPU
 * backend). It uses native TensorFlow when tfjs-node is installed, else `wasm`, else `cpu`.
 *
 * @example
 * ```ts
 * import '@pelk/backend-tfjs-node/register';
 * const result = await evaluate(cell, inputs, { backend: 'tfjs', method: 'quasi-deer' });
 * ```
 */
import { registerBackend } from '@pelk/core';
import { createTfjsBackend } from './runtime.js';

registerBackend('tfjs', () => createTfjsBackend(), 10);
