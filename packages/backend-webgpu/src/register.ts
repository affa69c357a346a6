/**
 * Side-effect entry: registers the WebGPU backend as `'webgpu'` (priority 20, above the tfjs and
 * CPU backends). Resolving it fails, with the reason listed, where no WebGPU adapter exists.
 *
 * @example
 * ```ts
 * import '@pelk/backend-webgpu/register';
 * const result = await evaluate(cell, inputs, { backend: 'webgpu', method: 'quasi-deer' });
 * ```
 */
import { registerBackend } from '@pelk/core';
import { createWebGpuBackend } from './runtime.js';

registerBackend('webgpu', () => createWebGpuBackend(), 20);
