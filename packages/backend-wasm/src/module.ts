/**
 * Loading the kernels: the WebAssembly binary built from assembly/ (embedded as base64 by
 * scripts/build-wasm.mjs), compiled once per process and instantiated once per backend, over the
 * backend's own memory.
 */
import { KERNELS_SHARED_WASM_BASE64, KERNELS_WASM_BASE64 } from './generated/kernels-wasm.js';

/** The kernels' exports (see assembly/kernels.ts); pointers are byte offsets into the memory. */
export interface KernelExports {
  readonly heapBase: WebAssembly.Global;
  project32(WihT: number, bias: number, x: number, out: number, rows: number, I: number, G: number): void;
  project64(WihT: number, bias: number, x: number, out: number, rows: number, I: number, G: number): void;
  rollout32(d: number, drive: number, init: number, out: number, B: number, T: number, start: number, end: number): void;
  rollout64(d: number, drive: number, init: number, out: number, B: number, T: number, start: number, end: number): void;
  sweep32(d: number, drive: number, prev: number, out: number, rows: number): void;
  sweep64(d: number, drive: number, prev: number, out: number, rows: number): void;
  linearize32(...args: LinearizeArgs): void;
  linearize64(...args: LinearizeArgs): void;
  /** The adjoint sweep's passes (see assembly/kernels.ts). */
  adjointTape32(d: number, drive: number, prev: number, tape: number, B: number, n: number, T: number, Wn: number): void;
  adjointTape64(d: number, drive: number, prev: number, tape: number, B: number, n: number, T: number, Wn: number): void;
  adjointSweep32(d: number, tape: number, g: number, carry: number, dgh: number, dgi: number, B: number, n: number, T: number, Wn: number): void;
  adjointSweep64(d: number, tape: number, g: number, carry: number, dgh: number, dgi: number, B: number, n: number, T: number, Wn: number): void;
  /** `(A, lda, g0, g1, X, ldx, K, B, n, aBatch, xBatch, out, bias)`. */
  outerAccumulate32(...args: number[]): void;
  outerAccumulate64(...args: number[]): void;
  inputGrad32(Wih: number, dgi: number, du: number, B: number, n: number, Wn: number, T: number, G: number, I: number): void;
  inputGrad64(Wih: number, dgi: number, du: number, B: number, n: number, Wn: number, T: number, G: number, I: number): void;
  scanDiagonal32(a: number, b: number, init: number, out: number, B: number, T: number, D: number, reverse: number): void;
  scanDiagonal64(a: number, b: number, init: number, out: number, B: number, T: number, D: number, reverse: number): void;
  /** `op`: 0 add, 1 sub, 2 mul. */
  elementwise32(op: number, x: number, y: number, out: number, n: number): void;
  elementwise64(op: number, x: number, y: number, out: number, n: number): void;
  sanitize32(x: number, out: number, n: number, bound: number, result: number): void;
  sanitize64(x: number, out: number, n: number, bound: number, result: number): void;
  /** `y` = 0: `max |x|`. */
  maxAbsDiff32(x: number, y: number, n: number): number;
  maxAbsDiff64(x: number, y: number, n: number): number;
  sumSquaredDiff32(x: number, y: number, n: number): number;
  sumSquaredDiff64(x: number, y: number, n: number): number;
  scanChunk32(a: number, b: number, init: number, out: number, prod: number, T: number, D: number, reverse: number): void;
  scanChunk64(a: number, b: number, init: number, out: number, prod: number, T: number, D: number, reverse: number): void;
  scanDense32(A: number, b: number, init: number, out: number, B: number, T: number, D: number, reverse: number): void;
  scanDense64(A: number, b: number, init: number, out: number, B: number, T: number, D: number, reverse: number): void;
  /** `(F, b, y, init, mean, cov, B, T, D, q, r, smooth, scratch)`. */
  kalmanDense32(...args: number[]): void;
  kalmanDense64(...args: number[]): void;
  /** `op`: the index of core's unary op in `UNARY_CODES` (wasm-backend.ts). */
  unary32(op: number, x: number, out: number, n: number): void;
  unary64(op: number, x: number, out: number, n: number): void;
  affine32(x: number, out: number, n: number, a: number, b: number): void;
  affine64(x: number, out: number, n: number, a: number, b: number): void;
  kalmanDiagonal32(...args: KalmanArgs): void;
  kalmanDiagonal64(...args: KalmanArgs): void;
  scanFix32(a: number, out: number, carry: number, T: number, D: number, reverse: number): void;
  scanFix64(a: number, out: number, carry: number, T: number, D: number, reverse: number): void;
}

/** `(desc, drive, states, init, jac, defect, B, n, stride, T, start, dense, result)`. */
type LinearizeArgs = [number, number, number, number, number, number, number, number, number, number, number, number, number];
/** `(F, b, y, init, mean, variance, B, T, D, d0, d1, q, r, smooth)`. */
type KalmanArgs = [number, number, number, number, number, number, number, number, number, number, number, number, number, number];

/** A minimal module with one SIMD instruction (`i32x4.splat`): validates only where SIMD is supported. */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253, 17, 11,
]);

/** What this environment lacks for the kernels, or undefined when it has everything. */
export function missingFeature(): string | undefined {
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.Module !== 'function') return 'WebAssembly';
  try {
    if (!WebAssembly.validate(SIMD_PROBE)) return 'WebAssembly SIMD (128-bit)';
  } catch {
    return 'WebAssembly SIMD (128-bit)';
  }
  return undefined;
}

/** The compiled modules (plain and shared memory), each compiled once per process. */
const compiled: { plain?: Promise<WebAssembly.Module>; shared?: Promise<WebAssembly.Module> } = {};

function decodeBase64(text: string): Uint8Array {
  const g = globalThis as { Buffer?: { from(s: string, e: string): Uint8Array } };
  if (g.Buffer) return new Uint8Array(g.Buffer.from(text, 'base64'));
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The kernels' module for a plain (one thread) or shared (worker threads) memory. */
export function kernelModule(shared: boolean): Promise<WebAssembly.Module> {
  const key = shared ? 'shared' : 'plain';
  let module = compiled[key];
  if (!module) {
    module = WebAssembly.compile(decodeBase64(shared ? KERNELS_SHARED_WASM_BASE64 : KERNELS_WASM_BASE64) as BufferSource);
    module.catch(() => {
      compiled[key] = undefined;
    });
    compiled[key] = module;
  }
  return module;
}

/** Instantiates the kernels over `memory` (a shared memory takes the shared module). */
export async function instantiateKernels(memory: WebAssembly.Memory, module: WebAssembly.Module): Promise<KernelExports> {
  const instance = await WebAssembly.instantiate(module, {
    env: {
      memory,
      abort: () => {
        throw new Error('pelk wasm kernel aborted');
      },
    },
  });
  return instance.exports as unknown as KernelExports;
}
