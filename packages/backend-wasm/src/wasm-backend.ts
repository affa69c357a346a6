/**
 * The WebAssembly backend: the CPU backend's ops over tensors stored in one WebAssembly memory,
 * with fused cell kernels compiled from AssemblyScript with 128-bit SIMD (see assembly/).
 */
import { CpuBackend, type CpuBackendOptions, defaultCpuMemoryBudget } from '@pelk/backend-cpu';
import {
  type BackendCapabilities,
  BackendUnavailableError,
  type BindContext,
  type CellProgram,
  type DType,
  type FusedCell,
  InvalidArgumentError,
  type Tensor,
  describeValue,
} from '@pelk/core';
import { type HeapStorage, WasmHeap, reserveMemory } from './heap.js';
import { type KernelExports, instantiateKernels, missingFeature } from './module.js';
import { bindWasmProgram } from './program-kernels.js';

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

  /** Prefer {@link createWasmBackend}, which loads the kernels. */
  constructor(kernels: KernelExports, heap: WasmHeap, options: CpuBackendOptions = {}) {
    const plannable = Math.floor(heap.capacity * PLANNABLE_FRACTION);
    super({ ...options, maxTotalBytes: Math.min(options.maxTotalBytes ?? plannable, plannable) }, heap);
    this.kernels = kernels;
    this.heap = heap;
    const base = this.capabilities;
    const mib = (heap.capacity / 2 ** 20).toFixed(0);
    this.capabilities = { ...base, device: `WebAssembly SIMD (128-bit), ${mib} MiB memory; ${base.device}` };
  }

  /** @internal The byte offset of a tensor's storage in the memory (checked to be this backend's). */
  offsetOf(x: Tensor, field = 'tensor'): number {
    return (this.t(x, field).storage as HeapStorage).offset;
  }

  /** @internal A new tensor with stale contents, for kernels that write all of it. */
  empty(shape: readonly number[], dtype: DType): Tensor {
    return this.make([...shape], dtype);
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
