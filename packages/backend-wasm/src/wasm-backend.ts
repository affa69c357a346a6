/**
 * The WebAssembly backend: the CPU backend's ops over tensors stored in one WebAssembly memory,
 * with fused cell kernels compiled from AssemblyScript with 128-bit SIMD (see assembly/).
 */
import { CpuBackend, type CpuBackendOptions, type CpuTensor, defaultCpuMemoryBudget } from '@pelk/backend-cpu';
import {
  type BackendCapabilities,
  BackendUnavailableError,
  type BinaryOp,
  bindHostProgram,
  type KalmanModel,
  type KalmanMoments,
  type KalmanOptions,
  checkKalmanModel,
  type BindContext,
  type CellProgram,
  type DType,
  type FusedCell,
  InvalidArgumentError,
  type Sanitized,
  type ScanOptions,
  ShapeError,
  type Tensor,
  type UnaryOp,
  describeValue,
} from '@pelk/core';
import { type HeapStorage, WasmHeap, reserveMemory } from './heap.js';
import { type KernelExports, instantiateKernels, kernelModule, missingFeature } from './module.js';
import { type KernelCall, ThreadPool, missingThreadSupport } from './threads.js';
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
   * Threads the kernels run on, this one included: workers over a shared memory split each
   * kernel's rows, elements or chunks of time. Default: the available cores where worker threads,
   * `SharedArrayBuffer` and `Atomics.wait` exist here, else 1. Asking for more than 1 where they do
   * not exist rejects with a `BackendUnavailableError` naming what is missing.
   */
  readonly threads?: number;
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
  /** Threads the kernels run on (the calling one included). */
  readonly threads: number;
  private readonly workers: ThreadPool | undefined;
  /** Two f64 slots per thread where kernels leave results (sanitize's counts, linearise's reductions). */
  private readonly slots: number;

  /** Prefer {@link createWasmBackend}, which loads the kernels and starts the threads. */
  constructor(kernels: KernelExports, heap: WasmHeap, options: CpuBackendOptions = {}, pool?: ThreadPool) {
    const plannable = Math.floor(heap.capacity * PLANNABLE_FRACTION);
    super({ ...options, maxTotalBytes: Math.min(options.maxTotalBytes ?? plannable, plannable) }, heap);
    this.kernels = kernels;
    this.heap = heap;
    this.workers = pool;
    this.threads = pool?.size ?? 1;
    const base = this.capabilities;
    const mib = (heap.capacity / 2 ** 20).toFixed(0);
    const threads = `${this.threads} thread${this.threads === 1 ? '' : 's'}`;
    this.capabilities = { ...base, fusedAdjoint: true, device: `WebAssembly SIMD (128-bit), ${threads}, ${mib} MiB memory; ${base.device}` };
    this.slots = heap.allocBytes(16 * this.threads);
  }

  /** @internal The byte offset of a tensor's storage in the memory (checked to be this backend's). */
  offsetOf(x: Tensor, field = 'tensor'): number {
    return (this.t(x, field).storage as HeapStorage).offset;
  }

  /** @internal A new tensor with stale contents, for kernels that write all of it. */
  empty(shape: readonly number[], dtype: DType): Tensor {
    return this.make([...shape], dtype);
  }

  /** @internal Byte offset of thread `w`'s two f64 result slots. */
  slot(w: number): number {
    return this.slots + 16 * w;
  }

  /**
   * @internal Runs kernel calls at once, one per thread (the first on this one), and returns
   * their results; without workers, one after another.
   */
  run(calls: readonly KernelCall[]): number[] {
    if (this.workers && calls.length > 1) return this.workers.run(calls);
    const kernels = this.kernels as unknown as Record<string, (...args: number[]) => number | undefined>;
    return calls.map((c) => kernels[c.fn](...c.args) ?? 0);
  }

  /** @internal `[start, end)` shares of `n` items, one per thread when there are at least `min` of them. */
  shares(n: number, min: number, align = 16): [number, number][] {
    const parts = this.threads > 1 && n >= min ? this.threads : 1;
    return splitRange(n, parts, align);
  }

  /** Stops the worker threads (the backend then runs nothing more). */
  destroy(): void {
    this.workers?.destroy();
  }

  // ---- primitives with WebAssembly kernels (the rest are the CPU backend's) -------------------

  /** The tensor, checked to be this backend's, with its byte offset. */
  private at(x: Tensor, field: string): { t: CpuTensor; offset: number; bytes: number; suffix: string } {
    const t = this.t(x, field);
    const f64 = t.dtype === 'float64';
    return { t, offset: (t.storage as HeapStorage).offset, bytes: f64 ? 8 : 4, suffix: f64 ? '64' : '32' };
  }

  /** Unary ops: SIMD where WebAssembly has the instruction (neg, abs, square, sqrt), else scalar in WebAssembly. */
  override unary(op: UnaryOp, x: Tensor): Tensor {
    const code = UNARY_CODES.indexOf(op);
    if (code < 0) return super.unary(op, x);
    const src = this.at(x, 'x');
    const out = this.make(src.t.shape, src.t.dtype);
    const o = this.at(out, 'out').offset;
    const e = src.bytes;
    this.run(this.shares(src.t.size, PARALLEL_ELEMENTS).map(([s, t]) => ({ fn: `unary${src.suffix}`, args: [code, src.offset + s * e, o + s * e, t - s] })));
    return out;
  }

  override affine(x: Tensor, a: number, b: number): Tensor {
    const src = this.at(x, 'x');
    const out = this.make(src.t.shape, src.t.dtype);
    const o = this.at(out, 'out').offset;
    const e = src.bytes;
    this.run(this.shares(src.t.size, PARALLEL_ELEMENTS).map(([s, t]) => ({ fn: `affine${src.suffix}`, args: [src.offset + s * e, o + s * e, t - s, a, b] })));
    return out;
  }

  /** Same-shape, same-dtype `add`, `sub` and `mul` in SIMD; other cases (broadcasting) as the CPU backend. */
  override binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
    const code = op === 'add' ? 0 : op === 'sub' ? 1 : op === 'mul' ? 2 : -1;
    const x = this.at(a, 'a');
    const y = this.at(b, 'b');
    if (code < 0 || x.t.dtype !== y.t.dtype || !sameShape(x.t.shape, y.t.shape)) return super.binary(op, a, b);
    const out = this.make(x.t.shape, x.t.dtype);
    const o = this.at(out, 'out').offset;
    const e = x.bytes;
    this.run(
      this.shares(x.t.size, PARALLEL_ELEMENTS).map(([s, t]) => ({
        fn: `elementwise${x.suffix}`,
        args: [code, x.offset + s * e, y.offset + s * e, o + s * e, t - s],
      })),
    );
    return out;
  }

  /** `max |x − y|` (`y` undefined: `max |x|`) in shares, NaN if any share is NaN. */
  private maxOf(x: ReturnType<WasmBackend['at']>, y: ReturnType<WasmBackend['at']> | undefined): number {
    const e = x.bytes;
    const parts = this.run(
      this.shares(x.t.size, PARALLEL_ELEMENTS).map(([s, t]) => ({
        fn: `maxAbsDiff${x.suffix}`,
        args: [x.offset + s * e, y ? y.offset + s * e : 0, t - s],
      })),
    );
    return parts.reduce((m, v) => (Number.isNaN(m) || Number.isNaN(v) ? Number.NaN : Math.max(m, v)), 0);
  }

  override async maxAbsDiff(a: Tensor, b: Tensor): Promise<number> {
    const x = this.at(a, 'a');
    const y = this.at(b, 'b');
    if (x.t.dtype !== y.t.dtype || x.t.size !== y.t.size) return super.maxAbsDiff(a, b);
    return this.maxOf(x, y);
  }

  override async maxAbs(a: Tensor): Promise<number> {
    return this.maxOf(this.at(a, 'a'), undefined);
  }

  override async sumSquaredDiff(a: Tensor, b: Tensor): Promise<number> {
    const x = this.at(a, 'a');
    const y = this.at(b, 'b');
    if (x.t.dtype !== y.t.dtype || x.t.size !== y.t.size) return super.sumSquaredDiff(a, b);
    const e = x.bytes;
    const parts = this.run(
      this.shares(x.t.size, PARALLEL_ELEMENTS).map(([s, t]) => ({ fn: `sumSquaredDiff${x.suffix}`, args: [x.offset + s * e, y.offset + s * e, t - s] })),
    );
    return parts.reduce((sum, v) => sum + v, 0);
  }

  override sanitize(x: Tensor, bound: number): Sanitized {
    const src = this.at(x, 'tensor');
    const out = this.make(src.t.shape, src.t.dtype);
    const o = this.at(out, 'out').offset;
    const e = src.bytes;
    const shares = this.shares(src.t.size, PARALLEL_ELEMENTS);
    this.run(shares.map(([s, t], w) => ({ fn: `sanitize${src.suffix}`, args: [src.offset + s * e, o + s * e, t - s, bound, this.slot(w)] })));
    const counts = new Float64Array(this.heap.memory.buffer, this.slots, 2 * shares.length);
    let nonFinite = 0;
    let clipped = 0;
    for (let w = 0; w < shares.length; w++) {
      nonFinite += counts[2 * w];
      clipped += counts[2 * w + 1];
    }
    return { value: out, nonFinite: Promise.resolve(nonFinite), clipped: Promise.resolve(clipped) };
  }

  /** A scan's tensors (checked to be this backend's, of one dtype) and sizes, with the CPU backend's errors. */
  private scanInputs(a: Tensor, b: Tensor, init: Tensor, dense: boolean) {
    const [name, aField] = dense ? ['linearScanDense', 'A'] : ['linearScanDiagonal', 'a'];
    const ta = this.at(a, aField);
    const tb = this.at(b, 'b');
    const ti = this.at(init, 'init');
    const [B, T, D] = tb.t.shape;
    if (tb.t.shape.length !== 3 || ta.t.size !== tb.t.size * (dense ? D : 1) || ti.t.size !== B * D) {
      const expected = dense ? 'A [B, T, D, D], b [B, T, D] and init [B, D]' : 'a, b [B, T, D] and init [B, D]';
      throw new ShapeError(name, expected, `[${ta.t.shape}], [${tb.t.shape}], [${ti.t.shape}]`);
    }
    const dtype = tb.t.dtype;
    if (ta.t.dtype !== dtype || ti.t.dtype !== dtype) {
      throw new InvalidArgumentError(name, `${aField}, b and init all ${dtype}`, `${ta.t.dtype}, ${dtype}, ${ti.t.dtype}`);
    }
    return { ta, tb, ti, B, T, D, dtype };
  }

  /**
   * The diagonal recurrence in SIMD passes over time, no workspace. With threads: batch entries
   * split across them when there are enough; otherwise time split into one chunk per thread —
   * each chunk scanned from zero with the product of its `a` (phase 1), the chunks' entering
   * states combined in order (phase 2), and each chunk fixed up with its entering state (phase 3).
   * Dense scans as the CPU backend.
   */
  override linearScanDiagonal(a: Tensor, b: Tensor, init: Tensor, options: ScanOptions = {}): Tensor {
    const { ta, tb, ti, B, T, D, dtype } = this.scanInputs(a, b, init, false);
    const out = this.make(tb.t.shape, dtype);
    const o = this.at(out, 'out').offset;
    const e = tb.bytes;
    const reverse = options.reverse ? 1 : 0;
    const W = this.threads;
    const big = B * T * D >= PARALLEL_ELEMENTS;
    // Splitting time moves about twice the bytes (a second pass for the fix-ups) of a scan that is
    // already bound by memory: on 2 threads it measured 2.3× slower than one pass (pelk bench
    // --suite kernels), so one sequence is split in time only from TIME_SPLIT_THREADS threads on.
    if (W === 1 || !big || (B < W && (T < 4 * W || W < TIME_SPLIT_THREADS))) {
      this.run([{ fn: `scanDiagonal${tb.suffix}`, args: [ta.offset, tb.offset, ti.offset, o, B, T, D, reverse] }]);
      return out;
    }
    if (B >= W) {
      this.run(
        splitRange(B, W, 1).map(([b0, b1]) => ({
          fn: `scanDiagonal${tb.suffix}`,
          args: [ta.offset + b0 * T * D * e, tb.offset + b0 * T * D * e, ti.offset + b0 * D * e, o + b0 * T * D * e, b1 - b0, T, D, reverse],
        })),
      );
      return out;
    }
    const scratch = this.heap.allocBytes((1 + 2 * W) * D * e);
    this.noteWorkspace((1 + 2 * W) * D * e);
    try {
      const zeros = scratch;
      const prod = scratch + D * e;
      const carry = prod + W * D * e;
      const view = this.heap.view(dtype, scratch, (1 + 2 * W) * D);
      view.fill(0, 0, D);
      const outView = this.hostData(out);
      // Chunks in processing order: reversed in time for a reverse scan.
      const blocks = splitRange(T, W, 1);
      if (reverse) blocks.reverse();
      const lastRow = ([t0, t1]: [number, number]) => (reverse ? t0 : t1 - 1);
      for (let bi = 0; bi < B; bi++) {
        const base = bi * T;
        this.run(
          blocks.map(([t0, t1], c) => ({
            fn: `scanChunk${tb.suffix}`,
            args: [
              ta.offset + (base + t0) * D * e,
              tb.offset + (base + t0) * D * e,
              c === 0 ? ti.offset + bi * D * e : zeros,
              o + (base + t0) * D * e,
              prod + c * D * e,
              t1 - t0,
              D,
              reverse,
            ],
          })),
        );
        // Phase 2: the state entering each chunk, in order (B·W·D work).
        for (let j = 0; j < D; j++) {
          let state = outView[(base + lastRow(blocks[0])) * D + j];
          for (let c = 1; c < W; c++) {
            view[D + W * D + c * D + j] = state; // carry[c][j]
            state = outView[(base + lastRow(blocks[c])) * D + j] + view[D + c * D + j] * state;
          }
        }
        this.run(
          blocks.slice(1).map(([t0, t1], k) => ({
            fn: `scanFix${tb.suffix}`,
            args: [ta.offset + (base + t0) * D * e, o + (base + t0) * D * e, carry + (k + 1) * D * e, t1 - t0, D, reverse],
          })),
        );
      }
    } finally {
      this.heap.freeBytes(scratch, (1 + 2 * W) * D * e);
    }
    return out;
  }

  /**
   * The dense recurrence in one pass over time (D SIMD dot products per step, no workspace); with
   * threads, batch entries split across them. On one core the sequential recurrence does the
   * least work: a parallel dense scan multiplies D×D matrices (O(D³) per step).
   */
  override linearScanDense(A: Tensor, b: Tensor, init: Tensor, options: ScanOptions = {}): Tensor {
    const { ta: tA, tb, ti, B, T, D, dtype } = this.scanInputs(A, b, init, true);
    const out = this.make(tb.t.shape, dtype);
    const o = this.at(out, 'out').offset;
    const e = tb.bytes;
    this.run(
      this.shares(B, 2, 1).map(([b0, b1]) => ({
        fn: `scanDense${tb.suffix}`,
        args: [tA.offset + b0 * T * D * D * e, tb.offset + b0 * T * D * e, ti.offset + b0 * D * e, o + b0 * T * D * e, b1 - b0, T, D, options.reverse ? 1 : 0],
      })),
    );
    return out;
  }

  /** A Kalman model's tensors (checked to be this backend's, of one dtype) and its sizes. */
  private kalmanInputs(model: KalmanModel, dense: boolean) {
    const parts = [model?.transition, model?.bias, model?.observation, model?.init];
    const fields = ['model.transition', 'model.bias', 'model.observation', 'model.init'];
    const [F, b, y, init] = parts.map((t, i) => this.at(t, fields[i]));
    const [B, T, D] = checkKalmanModel(model, dense);
    const dtype = b.t.dtype;
    if ([F, y, init].some((x) => x.t.dtype !== dtype)) {
      throw new InvalidArgumentError('model', `transition, bias, observation and init all ${dtype}`, [F, b, y, init].map((x) => x.t.dtype).join(', '));
    }
    return { F, b, y, init, B, T, D, dtype };
  }

  /**
   * The quasi-ELK Kalman filter (and RTS smoother) as sequential SIMD passes over time, one scalar
   * model per channel; with threads, channels split across them (they are independent).
   */
  override kalmanDiagonal(model: KalmanModel, options: KalmanOptions = {}): KalmanMoments {
    const { F, b, y, init, B, T, D, dtype } = this.kalmanInputs(model, false);
    const mean = this.make([B, T, D], dtype);
    const variance = this.make([B, T, D], dtype);
    const [m, v] = [this.at(mean, 'mean').offset, this.at(variance, 'variance').offset];
    const channels = B * T * D >= PARALLEL_ELEMENTS ? splitRange(D, Math.min(this.threads, Math.floor(D / 4) || 1), 4) : [[0, D] as [number, number]];
    this.run(
      channels.map(([d0, d1]) => ({
        fn: `kalmanDiagonal${b.suffix}`,
        args: [F.offset, b.offset, y.offset, init.offset, m, v, B, T, D, d0, d1, model.processVariance, model.observationVariance, options.smooth ? 1 : 0],
      })),
    );
    return { mean, covariance: variance };
  }

  /**
   * The ELK Kalman filter (and RTS smoother) with `D×D` transitions, sequential over time (O(D³)
   * per step, Cholesky solves, covariances symmetrised); with threads, batch entries split across
   * them. On one core the sequential filter does the least work: the associative form multiplies
   * and inverts several `D×D` matrices per element and combination.
   */
  override kalmanDense(model: KalmanModel, options: KalmanOptions = {}): KalmanMoments {
    const { F, b, y, init, B, T, D, dtype } = this.kalmanInputs(model, true);
    const mean = this.make([B, T, D], dtype);
    const cov = this.make([B, T, D, D], dtype);
    const [m, c] = [this.at(mean, 'mean').offset, this.at(cov, 'covariance').offset];
    const e = b.bytes;
    const shares = this.shares(B, 2, 1);
    const scratchBytes = (6 * D * D + 2 * D) * e;
    const scratch = this.heap.allocBytes(scratchBytes * shares.length);
    this.noteWorkspace(scratchBytes * shares.length);
    try {
      this.run(
        shares.map(([b0, b1], w) => ({
          fn: `kalmanDense${b.suffix}`,
          args: [
            F.offset + b0 * T * D * D * e,
            b.offset + b0 * T * D * e,
            y.offset + b0 * T * D * e,
            init.offset + b0 * D * e,
            m + b0 * T * D * e,
            c + b0 * T * D * D * e,
            b1 - b0,
            T,
            D,
            model.processVariance,
            model.observationVariance,
            options.smooth ? 1 : 0,
            scratch + w * scratchBytes,
          ],
        })),
      );
    } finally {
      this.heap.freeBytes(scratch, scratchBytes * shares.length);
    }
    return { mean, covariance: cov };
  }

  /** Fused cell kernels in WebAssembly for GRU, LSTM and Elman programs. */
  override bindProgram(program: CellProgram, context: BindContext): FusedCell | undefined {
    // The `ar` cell: core's fused TypeScript kernel over this backend's memory (one thread).
    if (program?.kind === 'ar') return bindHostProgram(this, program, context);
    return bindWasmProgram(this, program, context);
  }

  /** Bytes of WebAssembly memory in allocated blocks, and the footprint touched so far. */
  heapUsage(): { usedBytes: number; footprintBytes: number; capacityBytes: number } {
    return { usedBytes: this.heap.usedBytes, footprintBytes: this.heap.footprintBytes, capacityBytes: this.heap.capacity };
  }
}

/** Core's unary ops in the order of the kernels' op codes (assembly/kernels.ts, `unary`). */
const UNARY_CODES: readonly UnaryOp[] = ['neg', 'abs', 'square', 'sqrt', 'exp', 'log', 'tanh', 'sigmoid', 'hardSigmoid', 'hardSigmoidGrad', 'relu', 'step', 'softplus'];

/** Threads from which one sequence's diagonal scan is split in time (see `linearScanDiagonal`). */
export const TIME_SPLIT_THREADS = 3;

/** Elements below which an elementwise op or scan runs on one thread (a fork–join costs ~10–50 µs). */
const PARALLEL_ELEMENTS = 1 << 16;

/** `parts` contiguous `[start, end)` shares of `n`, boundaries multiples of `align` (but the last). */
export function splitRange(n: number, parts: number, align: number): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const end = p === parts - 1 ? n : Math.min(n, Math.round((n * (p + 1)) / parts / align) * align);
    if (end > start) out.push([start, end]);
    start = Math.max(start, end);
  }
  return out.length > 0 ? out : [[0, n]];
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
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > 256)) {
    throw new InvalidArgumentError('options.threads', 'an integer in [1, 256]', describeValue(options.threads));
  }
  const missing = missingFeature();
  if (missing) throw new BackendUnavailableError([{ name: 'wasm', reason: `this environment has no ${missing}` }]);
  const noThreads = missingThreadSupport();
  if (noThreads && options.threads !== undefined && options.threads > 1) {
    throw new BackendUnavailableError([{ name: 'wasm', reason: `${options.threads} threads need ${noThreads}, which this environment lacks` }]);
  }
  const threads = noThreads ? 1 : (options.threads ?? availableCores());
  const shared = threads > 1;
  const memory = reserveMemory(requested, shared);
  const module = await kernelModule(shared);
  const kernels = await instantiateKernels(memory, module);
  const heap = new WasmHeap(memory, Number(kernels.heapBase.value));
  let pool: ThreadPool | undefined;
  if (shared) {
    const control = heap.allocBytes(ThreadPool.controlBytes * (threads - 1));
    pool = await ThreadPool.create(threads, module, memory, control, kernels as unknown as Record<string, unknown>);
  }
  return new WasmBackend(kernels, heap, { poolBytes: options.poolBytes }, pool);
}

/** Cores this process may use: `os.availableParallelism()` in Node, `navigator.hardwareConcurrency` in browsers. */
export function availableCores(): number {
  const g = globalThis as {
    process?: { getBuiltinModule?: (id: string) => { availableParallelism?: () => number } | undefined };
    navigator?: { hardwareConcurrency?: number };
  };
  let n = 0;
  try {
    n = g.process?.getBuiltinModule?.('node:os')?.availableParallelism?.() ?? 0;
  } catch {
    n = 0;
  }
  if (!(n >= 1)) n = g.navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(256, Math.floor(n)));
}
