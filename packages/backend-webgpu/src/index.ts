/**
 * @pelk/backend-webgpu — pelk on WebGPU (browsers, and Node through Dawn's `webgpu` package):
 * WGSL scans and Kalman passes, tfjs-backend-webgpu for dense algebra.
 */
export { createWebGpuBackend, type WebGpuBackendOptions } from './runtime.js';
export { type GpuPoolUsage, WebGpuBackend, type WebGpuLimitsOptions, webgpuMemoryBudget } from './webgpu-backend.js';
export { DEFAULT_CHUNK, DEFAULT_DENSE_CHUNK, type KernelOptions, type ScanLayout, denseScan, diagonalScan, kalmanDiagonal, reduceLevels } from './kernels/index.js';
