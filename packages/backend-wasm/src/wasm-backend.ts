/**
 * The WebAssembly backend: the CPU backend's ops over tensors stored in one WebAssembly memory,
 * with fused cell kernels compiled from AssemblyScript with 128-bit SIMD (see assembly/).
 */
import { CpuBackend, type CpuBackendOptions, type CpuTensor, defaultCpuMemoryBudget } from '@pelk/backend-cpu';
import {
  type BackendCapabilities,
  BackendUnavailableError,
  type BinaryOp,
  type BindContext,
  type CellProgram,
  type DType,
  type FusedCell,
  InvalidArgumentError,
  type Sanitized,
  type ScanOptions,
  ShapeError,
  type Tensor,
  describeValue,
} from '@pelk/core';
import { type HeapStorage, WasmHeap, reserveMemory } from './heap.js';
import { type KernelExports, instantiateKernels, missingFeature } from './module.js';
import { bindWasmProgram } from './program-kernels.js';

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The most one WebAssembly (wasm32) memory addresses: 65,536 pages of 64 KiB. */
export const WASM_MEMORY_LIMIT = 2 ** 32;

/**
 * Share of the reserved memory an evaluation may plan for: the rest absorbs alignment and
 * fragmentation, so that a problem core admits (its estimate ≤ `maxTotalBytes`) finds its blocks.
 */
const PLANNABLE_FRACTION = 0.9;

/** Options of {@link createWasmBackend}. */
export interface WasmBackendOptions extends Pick<CpuBackendOptions, 'poolBytes'> {
  /**
   * Bytes of WebAssembly memory to reserve (at most 4 GiB, one wasm32 memory). Default: the CPU
   * backend's budget (70 % of the machine's memory), capped at 4 GiB. Reserving is cheap: pages
   * are committed when first used.
   */
  readonly memoryBytes?: number;
}

/**
 * pelk's WebAssembly backend (`'wasm'`): float64 and float32 tensors in WebAssembly memory; the
 * fused cell kernels (GRU in every convention, LSTM, Elman: rollout, linearisation, sweep, input
 * projection) run as WebAssembly with 128-bit SIMD; the other primitives run the CPU backend's
 * TypeScript kernels over the same memory. Create it with {@link createWasmBackend}.
 *
 * @example
 * ```ts
 * import { evaluate } from '@pelk/core';
 * import { createWasmBackend } from '@pelk/backend-wasm';
 * const backend = await createWasmBackend();
 * const result = await evaluate(cell, inputs, { backend, method: 'quasi-deer', dtype: 'float32' });
 * ```
 */
export class WasmBackend extends CpuBackend {
  override readonly name: string = 'wasm';
  // Declared, not redefined: the CPU backend's constructor sets it, this one adds the device.
  declare readonly capabilities: BackendCapabilities;
  /** @internal */
  readonly kernels: KernelExports;
  /** @internal */
  readonly heap: WasmHeap;
  /** Two f64 slots where kernels leave counts (sanitize). */
  private readonly counts: number;

  /** Prefer {@link createWasmBackend}, which loads the kernels. */
  constructor(kernels: KernelExports, heap: WasmHeap, options: CpuBackendOptions = {}) {
    const plannable = Math.floor(heap.capacity * PLANNABLE_FRACTION);
    super({ ...options, maxTotalBytes: Math.min(options.maxTotalBytes ?? plannable, plannable) }, heap);
    this.kernels = kernels;
    this.heap = heap;
    const base = this.capabilities;
    const mib = (heap.capacity / 2 ** 20).toFixed(0);
    this.capabilities = { ...base, device: `WebAssembly SIMD (128-bit), ${mib} MiB memory; ${base.device}` };
    this.counts = heap.allocBytes(16);
  }

  /** @internal The byte offset of a tensor's storage in the memory (checked to be this backend's). */
  offsetOf(x: Tensor, field = 'tensor'): number {
    return (this.t(x, field).storage as HeapStorage).offset;
  }

  /** @internal A new tensor with stale contents, for kernels that write all of it. */
  empty(shape: readonly number[], dtype: DType): Tensor {
    return this.make([...shape], dtype);
  }

  // ---- primitives with WebAssembly kernels (the rest are the CPU backend's) -------------------

  /** The tensor, checked to be this backend's, with its byte offset. */
  private at(x: Tensor, field: string): { t: CpuTensor; offset: number } {
    const t = this.t(x, field);
    return { t, offset: (t.storage as HeapStorage).offset };
  }

  /** Same-shape, same-dtype `add`, `sub` and `mul` in SIMD; other cases (broadcasting) as the CPU backend. */
  override binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
    const code = op === 'add' ? 0 : op === 'sub' ? 1 : op === 'mul' ? 2 : -1;
    const x = this.at(a, 'a');
    const y = this.at(b, 'b');
    if (code < 0 || x.t.dtype !== y.t.dtype || !sameShape(x.t.shape, y.t.shape)) return super.binary(op, a, b);
    const out = this.make(x.t.shape, x.t.dtype);
    (x.t.dtype === 'float64' ? this.kernels.elementwise64 : this.kernels.elementwise32)(code, x.offset, y.offset, this.at(out, 'out').offset, x.t.size);
    return out;
  }

  override async maxAbsDiff(a: Tensor, b: Tensor): Promise<number> {
    const x = this.at(a, 'a');
    const y = this.at(b, 'b');
    if (x.t.dtype !== y.t.dtype || x.t.size !== y.t.size) return super.maxAbsDiff(a, b);
    return (x.t.dtype === 'float64' ? this.kernels.maxAbsDiff64 : this.kernels.maxAbsDiff32)(x.offset, y.offset, x.t.size);
  }

  override async maxAbs(a: Tensor): Promise<number> {
    const x = this.at(a, 'a');
    return (x.t.dtype === 'float64' ? this.kernels.maxAbsDiff64 : this.kernels.maxAbsDiff32)(x.offset, 0, x.t.size);
  }

  override async sumSquaredDiff(a: Tensor, b: Tensor): Promise<number> {
    const x = this.at(a, 'a');
    const y = this.at(b, 'b');
    if (x.t.dtype !== y.t.dtype || x.t.size !== y.t.size) return super.sumSquaredDiff(a, b);
    return (x.t.dtype === 'float64' ? this.kernels.sumSquaredDiff64 : this.kernels.sumSquaredDiff32)(x.offset, y.offset, x.t.size);
  }

  override sanitize(x: Tensor, bound: number): Sanitized {
    const src = this.at(x, 'tensor');
    const out = this.make(src.t.shape, src.t.dtype);
    const f64 = src.t.dtype === 'float64';
    (f64 ? this.kernels.sanitize64 : this.kernels.sanitize32)(src.offset, this.at(out, 'out').offset, src.t.size, bound, this.counts);
    const counts = new Float64Array(this.heap.memory.buffer, this.counts, 2);
    return { value: out, nonFinite: Promise.resolve(counts[0]), clipped: Promise.resolve(counts[1]) };
  }

  /** The diagonal recurrence in one SIMD pass over time (no workspace); dense scans as the CPU backend. */
  override linearScanDiagonal(a: Tensor, b: Tensor, init: Tensor, options: ScanOptions = {}): Tensor {
    const ta = this.at(a, 'a');
    const tb = this.at(b, 'b');
    const ti = this.at(init, 'init');
    const [B, T, D] = tb.t.shape;
    if (tb.t.shape.length !== 3 || ta.t.size !== tb.t.size || ti.t.size !== B * D) {
      throw new ShapeError('linearScanDiagonal', 'a, b [B, T, D] and init [B, D]', `[${ta.t.shape}], [${tb.t.shape}], [${ti.t.shape}]`);
    }
    const dtype = tb.t.dtype;
    if (ta.t.dtype !== dtype || ti.t.dtype !== dtype) {
      throw new InvalidArgumentError('linearScanDiagonal', `a, b and init all ${dtype}`, `${ta.t.dtype}, ${dtype}, ${ti.t.dtype}`);
    }
    const out = this.make(tb.t.shape, dtype);
    (dtype === 'float64' ? this.kernels.scanDiagonal64 : this.kernels.scanDiagonal32)(
      ta.offset,
      tb.offset,
      ti.offset,
      this.at(out, 'out').offset,
      B,
      T,
      D,
      options.reverse ? 1 : 0,
    );
    return out;
  }

  /** Fused cell kernels in WebAssembly for GRU, LSTM and Elman programs. */
  override bindProgram(program: CellProgram, context: BindContext): FusedCell | undefined {
    return bindWasmProgram(this, program, context);
  }

  /** Bytes of WebAssembly memory in allocated blocks, and the footprint touched so far. */
  heapUsage(): { usedBytes: number; footprintBytes: number; capacityBytes: number } {
    return { usedBytes: this.heap.usedBytes, footprintBytes: this.heap.footprintBytes, capacityBytes: this.heap.capacity };
  }
}

/**
 * Creates a WebAssembly backend: checks that the environment has WebAssembly with SIMD, reserves
 * its memory and instantiates the kernels. Rejects with a `BackendUnavailableError` naming what
 * is missing (so `auto` backend selection falls back to `cpu`).
 *
 * @example
 * ```ts
 * const backend = await createWasmBackend({ memoryBytes: 2 ** 30 }); // 1 GiB
 * ```
 */
export async function createWasmBackend(options: WasmBackendOptions = {}): Promise<WasmBackend> {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError('options', 'an options object', describeValue(options));
  }
  const requested = options.memoryBytes ?? Math.min(defaultCpuMemoryBudget(), WASM_MEMORY_LIMIT);
  if (typeof requested !== 'number' || !(requested >= 2 ** 24) || requested > WASM_MEMORY_LIMIT) {
    throw new InvalidArgumentError('options.memoryBytes', `a number of bytes in [16 MiB, 4 GiB]`, describeValue(requested));
  }
  const missing = missingFeature();
  if (missing) throw new BackendUnavailableError([{ name: 'wasm', reason: `this environment has no ${missing}` }]);
  const memory = reserveMemory(requested);
  const kernels = await instantiateKernels(memory);
  const heap = new WasmHeap(memory, Number(kernels.heapBase.value));
  return new WasmBackend(kernels, heap, { poolBytes: options.poolBytes });
}
