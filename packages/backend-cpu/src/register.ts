/**
 * Side-effect entry: registers the CPU backend as `'cpu'` (priority 0, the fallback every other
 * backend outranks).
 *
 * @example
 * ```ts
 * import '@pelk/backend-cpu/register';
 * const result = await evaluate(cell, inputs); // runs on 'cpu' unless a higher-priority backend is registered
 * ```
 */
import { registerBackend } from '@pelk/core';
import { CpuBackend } from './cpu-backend.js';

registerBackend('cpu', () => new CpuBackend(), 0);
