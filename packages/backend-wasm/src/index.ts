/**
 * @pelk/backend-wasm — the WebAssembly SIMD compute backend (float64 and float32).
 * Import `@pelk/backend-wasm/register` to register it as `'wasm'`.
 */
export { WASM_MEMORY_LIMIT, WasmBackend, type WasmBackendOptions, availableCores, createWasmBackend } from './wasm-backend.js';
