/**
 * @pelk/backend-cpu — the plain-TypeScript compute backend (float64 and float32).
 * Import `@pelk/backend-cpu/register` to register it as `'cpu'`.
 */
export { CpuBackend, type CpuBackendOptions, defaultCpuMemoryBudget } from './cpu-backend.js';
export { CpuTensor, type Storage, type TensorStorage } from './storage.js';
