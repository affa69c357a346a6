/** The conformance suite on the WebAssembly backend, float64 and float32. */
import { defineConformanceSuite } from '@pelk/conformance';
import { createWasmBackend } from './wasm-backend.js';

defineConformanceSuite({ name: 'wasm', createBackend: () => createWasmBackend({ memoryBytes: 2 ** 31 }), timeoutMs: 300_000 });
