import {
  type BackendCapabilities,
  type BackendMemory,
  type BinaryOp,
  type BindContext,
  type CellProgram,
  type FusedCell,
  bindHostProgram,
  type ComputeBackend,
  type DType,
  type HostArray,
  InvalidArgumentError,
  type KalmanModel,
  type KalmanMoments,
  type KalmanOptions,
  PelkError,
  type Sanitized,
  type Corrected,
  type ScanOptions,
  ShapeError,
  type Tensor,
  type UnaryOp,
  checkKalmanModel,
  describeValue,
} from '@pelk/core';
import type * as tfc from '@tensorflow/tfjs-core';
import { kalmanDenseProgram, kalmanDiagonalProgram } from './programs/kalman.js';
import { denseRecurrence, diagonalRecurrence, matVec } from './programs/linear.js';
import { transposeLast } from './programs/linalg.js';
import type { Tf } from './programs/scan.js';

/** Options shared by the TensorFlow.js-based backends. */
export interface TfjsLimitsOptions {
  /**
   * Memory budget of one evaluation in bytes (core refuses problems whose estimated peak exceeds
   * it, before allocating). Default {@link defaultTfjsMemoryBudget}: on `wasm`, 90 % of the wasm
   * heap limit (4 GiB − 64 KiB); on `cpu` and `tensorflow` (host memory), 70 % of the machine's
   * memory (4 GiB where it cannot be read); on other tfjs backends (GPU) 4 GiB.
   */
  readonly maxTotalBytes?: number;
  /** Largest number of elements of one tensor (a device's largest buffer). Default 2^30. */
  readonly maxTensorElements?: number;
}

/** The wasm heap limit of tfjs-backend-wasm (its emscripten `getHeapMax()`: 4 GiB − 64 KiB). */
const WASM_HEAP_MAX = 4294901760;

/**
 * The default memory budget of one evaluation on a tfjs backend, in bytes (float32 tensors): on
 * `wasm`, 90 % of the wasm heap limit (every tensor lives in one 32-bit heap); on `cpu` and
 * `tensorflow` (host memory), 70 % of the machine's memory (`os.totalmem()` through
 * `process.getBuiltinModule` on Node, else 4 GiB); on other tfjs backends (GPU memory, not
 * reported by tfjs) 4 GiB.
 */
export function defaultTfjsMemoryBudget(tfBackend: string): number {
  if (tfBackend === 'wasm') return Math.floor(0.9 * WASM_HEAP_MAX);
  if (tfBackend !== 'cpu' && tfBackend !== 'tensorflow') return 4 * 2 ** 30;
  const g = globalThis as { process?: { getBuiltinModule?: (id: string) => { totalmem?: () => number } | undefined } };
  let total = 0;
  try {
    total = g.process?.getBuiltinModule?.('node:os')?.totalmem?.() ?? 0;
  } catch {
    total = 0;
  }
  return total > 0 ? Math.floor(0.7 * total) : 4 * 2 ** 30;
}

/**
 * pelk's `ComputeBackend` on TensorFlow.js: every primitive is a tfjs op or a tensor program of
 * tfjs ops (the scans and Kalman passes are log-depth, work-efficient associative scans), so it
 * runs on whichever tfjs backend is active — `tensorflow` (tfjs-node), `wasm`, `cpu`, `webgpu`.
 * pelk tensors are tfjs tensors; `tidy`/`keep`/`memory` are tfjs's own, so `tf.memory()` counts
 * everything pelk allocates. float32 only (tfjs computes in float32).
 *
 * Create one with {@link createTfjsBackend}, which also selects and initialises the tfjs backend.
 *
 * @example
 * ```ts
 * import { evaluate } from '@pelk/core';
 * import { createTfjsBackend } from '@pelk/backend-tfjs-node';
 * const backend = await createTfjsBackend({ backend: 'wasm' });
 * const result = await evaluate(cell, inputs, { backend, method: 'quasi-deer' });
 * ```
 */
export class TfjsBackend implements ComputeBackend {
  readonly name: string = 'tfjs';
  readonly capabilities: BackendCapabilities;
  /** The tfjs namespace this backend computes with. */
  readonly tf: Tf;
  /** The tfjs backend (`tensorflow`, `wasm`, `cpu`, …) whose kernels run the ops. */
  readonly tfBackend: string;
  /**
   * On tfjs's `cpu` and `wasm` backends, whose tensors live in host memory (a typed array, or the
   * wasm heap): the tensor's storage without a copy, so cells with a fused host kernel run the
   * sequential method as one tight loop instead of a dozen tfjs ops per step. Absent elsewhere.
   */
  readonly hostData?: (t: Tensor) => HostArray;
  /** Fused cell kernels on the host-memory tfjs backends: core's host kernels over the tensors' storage. */
  readonly bindProgram?: (program: CellProgram, context: BindContext) => FusedCell | undefined;

  constructor(tf: Tf, tfBackend: string, options: TfjsLimitsOptions = {}, device?: string) {
    const maxTotal = options.maxTotalBytes ?? defaultTfjsMemoryBudget(tfBackend);
    if (typeof maxTotal !== 'number' || !Number.isFinite(maxTotal) || maxTotal <= 0) {
      throw new InvalidArgumentError('options.maxTotalBytes', 'a positive number', describeValue(maxTotal));
    }
    this.tf = tf;
    this.tfBackend = tfBackend;
    const hostMemory = tfBackend === 'cpu' || tfBackend === 'wasm';
    if (hostMemory) {
      this.hostData = (t) => this.hostView(t);
      this.bindProgram = (program, context) => bindHostProgram(this, program, context);
    }
    this.capabilities = {
      dtypes: ['float32'],
      epsilon: { float32: 2 ** -24 },
      device: device ?? `TensorFlow.js ${tf.version_core} (${tfBackend})`,
      // With host memory the fused sequential kernels beat any per-op parallel method on a CPU.
      prefersSequential: hostMemory,
      limits: { maxTensorElements: Math.min(options.maxTensorElements ?? 2 ** 30, Math.floor(maxTotal / 4)), maxTotalBytes: maxTotal },
    };
  }

  /**
   * Makes this backend's tfjs backend the active one again (tfjs has one active backend per
   * process; call this after another tfjs backend was selected).
   */
  async activate(): Promise<void> {
    if (this.tf.getBackend() !== this.tfBackend && !(await this.tf.setBackend(this.tfBackend))) {
      throw new PelkError('BACKEND_UNAVAILABLE', `tfjs backend '${this.tfBackend}' could not be re-activated`);
    }
  }

  /** The tfjs tensor behind a pelk tensor (they are the same object), checked. */
  protected t(x: Tensor, field = 'tensor'): tfc.Tensor {
    const candidate = x as unknown as tfc.Tensor;
    if (candidate === null || typeof candidate !== 'object' || !('dataId' in candidate) || typeof candidate.isDisposed !== 'boolean') {
      throw new InvalidArgumentError(field, 'a tensor of a tfjs backend', describeValue(x));
    }
    if (candidate.isDisposed) throw new InvalidArgumentError(field, 'a live tensor', 'a disposed tensor');
    return candidate;
  }

  /** The storage of a tensor on a host-memory tfjs backend (see {@link TfjsBackend.hostData}). */
  private hostView(x: Tensor): HostArray {
    const t = this.t(x);
    const backend = this.tf.engine().findBackend(this.tfBackend) as unknown as {
      typedArrayFromHeap?: (info: tfc.TensorInfo) => unknown;
      data?: { get(id: unknown): { values?: unknown } | undefined };
    };
    // wasm: a view on the heap (valid until the heap grows, i.e. the next tfjs allocation); cpu: the values array.
    const values = backend.typedArrayFromHeap ? backend.typedArrayFromHeap(t) : backend.data?.get(t.dataId)?.values;
    if (!(values instanceof Float32Array) || values.length !== t.size) {
      throw new PelkError('UNSUPPORTED', `tfjs backend '${this.tfBackend}' did not expose the tensor's float32 storage`);
    }
    return values;
  }

  /** Wraps a tfjs tensor as a pelk tensor (same object). */
  protected p(x: tfc.Tensor): Tensor {
    return x as unknown as Tensor;
  }

  /** Checks that the active tfjs backend is ours before the first op of an evaluation. */
  private checkActive(): void {
    const active = this.tf.getBackend();
    if (active !== this.tfBackend) {
      throw new PelkError(
        'BACKEND_UNAVAILABLE',
        `the active tfjs backend is '${active}', but this pelk backend was created for '${this.tfBackend}': call \`await backend.activate()\` first`,
      );
    }
  }

  // ---- memory -------------------------------------------------------------------------------

  fromArray(data: ArrayLike<number>, shape: readonly number[], dtype: DType): Tensor {
    this.checkDtype(dtype);
    this.checkActive();
    const n = shape.reduce((a, d) => a * d, 1);
    if (data.length !== n) throw new ShapeError('data', `${n} elements for shape [${shape.join(', ')}]`, String(data.length));
    const values = data instanceof Float32Array ? data : Float32Array.from(data);
    return this.p(this.tf.tensor(values, [...shape], 'float32'));
  }

  fill(shape: readonly number[], value: number, dtype: DType): Tensor {
    this.checkDtype(dtype);
    return this.p(this.tf.fill([...shape], value, 'float32'));
  }

  async read(x: Tensor): Promise<HostArray> {
    return (await this.t(x).data()) as Float32Array;
  }

  dispose(x: Tensor | readonly Tensor[]): void {
    const list = Array.isArray(x) ? (x as readonly Tensor[]) : [x as Tensor];
    for (const item of list) {
      const t = item as unknown as tfc.Tensor;
      if (t && typeof t === 'object' && 'dataId' in t && !t.isDisposed) t.dispose();
    }
  }

  tidy<R extends Tensor | readonly Tensor[] | Record<string, Tensor> | void>(fn: () => R): R {
    return this.tf.tidy(fn as () => tfc.TensorContainer) as unknown as R;
  }

  keep<T extends Tensor>(x: T): T {
    this.tf.keep(this.t(x));
    return x;
  }

  memory(): BackendMemory {
    const m = this.tf.memory();
    return { tensors: m.numTensors, bytes: m.numBytes };
  }

  private checkDtype(dtype: DType): void {
    if (dtype !== 'float32') throw new InvalidArgumentError('dtype', "'float32' (tfjs computes in float32)", describeValue(dtype));
  }

  // ---- shape ops ----------------------------------------------------------------------------

  reshape(x: Tensor, shape: readonly number[]): Tensor {
    const src = this.t(x);
    const free = shape.indexOf(-1);
    const known = shape.reduce((a, d, k) => (k === free ? a : a * d), 1);
    if ((free < 0 && known !== src.size) || (free >= 0 && (known === 0 || src.size % known !== 0))) {
      throw new ShapeError('reshape', `a shape with ${src.size} elements`, `[${shape.join(', ')}]`);
    }
    return this.p(this.tf.reshape(src, [...shape]));
  }

  cast(x: Tensor, dtype: DType): Tensor {
    this.checkDtype(dtype);
    return this.p(this.tf.clone(this.t(x)));
  }

  slice(x: Tensor, axis: number, start: number, size: number): Tensor {
    const src = this.t(x);
    const ax = normAxis(axis, src.rank);
    const dim = src.shape[ax];
    if (!Number.isInteger(start) || !Number.isInteger(size) || start < 0 || size < 0 || start + size > dim) {
      throw new InvalidArgumentError('slice', `0 ≤ start ≤ start + size ≤ ${dim}`, `start ${start}, size ${size}`);
    }
    const begin = src.shape.map((_, k) => (k === ax ? start : 0));
    const sizes = src.shape.map((d, k) => (k === ax ? size : d));
    return this.p(this.tf.slice(src, begin, sizes));
  }

  concat(ts: readonly Tensor[], axis: number): Tensor {
    if (ts.length === 0) throw new InvalidArgumentError('concat', 'at least one tensor', 'none');
    const srcs = ts.map((x) => this.t(x));
    const ax = normAxis(axis, srcs[0].rank);
    for (const s of srcs) {
      if (s.rank !== srcs[0].rank || s.shape.some((d, k) => k !== ax && d !== srcs[0].shape[k])) {
        throw new ShapeError('concat', `shapes matching [${srcs[0].shape.join(', ')}] except axis ${ax}`, `[${s.shape.join(', ')}]`);
      }
    }
    return this.p(srcs.length === 1 ? this.tf.clone(srcs[0]) : this.tf.concat(srcs, ax));
  }

  roll(x: Tensor, shift: number): Tensor {
    const src = this.t(x);
    const n = src.shape[src.rank - 1];
    const k = (((shift % n) + n) % n) | 0;
    if (k === 0) return this.p(this.tf.clone(src));
    return this.p(
      this.tf.tidy(() => this.tf.concat([this.lastAxisSlice(src, n - k, k), this.lastAxisSlice(src, 0, n - k)], src.rank - 1)),
    );
  }

  private lastAxisSlice(x: tfc.Tensor, start: number, size: number): tfc.Tensor {
    return this.tf.slice(
      x,
      x.shape.map((_, i) => (i === x.rank - 1 ? start : 0)),
      x.shape.map((d, i) => (i === x.rank - 1 ? size : d)),
    );
  }

  shiftTime(s: Tensor, s0: Tensor): Tensor {
    const x = this.t(s, 's');
    const init = this.t(s0, 's0');
    const [B, T, D] = x.shape;
    if (x.rank !== 3 || init.size !== B * D) {
      throw new ShapeError('shiftTime', 's [B, T, D] and s0 [B, D]', `[${x.shape.join(', ')}] and [${init.shape.join(', ')}]`);
    }
    const tf = this.tf;
    return this.p(
      tf.tidy(() => {
        const first = tf.reshape(init, [B, 1, D]);
        return T === 1 ? first : tf.concat([first, tf.slice(x, [0, 0, 0], [B, T - 1, D])], 1);
      }),
    );
  }

  timeStep(x: Tensor, t: number): Tensor {
    const src = this.t(x);
    const [B, , K] = src.shape;
    return this.p(this.tf.tidy(() => this.tf.reshape(this.tf.slice(src, [0, t, 0], [B, 1, K]), [B, K])));
  }

  stackTime(steps: readonly Tensor[]): Tensor {
    return this.p(this.tf.stack(steps.map((x) => this.t(x)), 1));
  }

  transpose(x: Tensor): Tensor {
    const src = this.t(x);
    if (src.rank < 2) throw new ShapeError('transpose', 'a tensor of rank ≥ 2', `rank ${src.rank}`);
    return this.p(transposeLast(this.tf, src));
  }

  diagEmbed(v: Tensor): Tensor {
    const src = this.t(v);
    const D = src.shape[src.rank - 1];
    const tf = this.tf;
    return this.p(tf.tidy(() => tf.mul(tf.expandDims(src, -1), tf.eye(D))));
  }

  diagPart(m: Tensor): Tensor {
    const src = this.t(m);
    const D = src.shape[src.rank - 1];
    const tf = this.tf;
    return this.p(tf.tidy(() => tf.sum(tf.mul(src, tf.eye(D)), -1)));
  }

  // ---- arithmetic ---------------------------------------------------------------------------

  unary(op: UnaryOp, x: Tensor): Tensor {
    const src = this.t(x);
    const tf = this.tf;
    return this.p(
      tf.tidy(() => {
        switch (op) {
          case 'neg':
            return tf.neg(src);
          case 'abs':
            return tf.abs(src);
          case 'square':
            return tf.square(src);
          case 'sqrt':
            return tf.sqrt(src);
          case 'exp':
            return tf.exp(src);
          case 'log':
            return tf.log(src);
          case 'tanh':
            return tf.tanh(src);
          case 'sigmoid':
            return tf.sigmoid(src);
          case 'hardSigmoid':
            return tf.clipByValue(tf.add(tf.mul(src, 0.2), 0.5), 0, 1);
          case 'hardSigmoidGrad':
            return tf.mul(tf.cast(tf.less(tf.abs(src), 2.5), 'float32'), 0.2);
          case 'relu':
            return tf.relu(src);
          case 'step':
            return tf.cast(tf.greater(src, 0), 'float32');
          case 'softplus':
            return tf.softplus(src);
          default:
            throw new InvalidArgumentError('op', 'a UnaryOp', describeValue(op));
        }
      }),
    );
  }

  binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
    const x = this.t(a, 'a');
    const y = this.t(b, 'b');
    checkBroadcast(x.shape, y.shape);
    const tf = this.tf;
    switch (op) {
      case 'add':
        return this.p(tf.add(x, y));
      case 'sub':
        return this.p(tf.sub(x, y));
      case 'mul':
        return this.p(tf.mul(x, y));
      case 'div':
        return this.p(tf.div(x, y));
      case 'max':
        return this.p(tf.maximum(x, y));
      case 'min':
        return this.p(tf.minimum(x, y));
      default:
        throw new InvalidArgumentError('op', 'a BinaryOp', describeValue(op));
    }
  }

  affine(x: Tensor, a: number, b: number): Tensor {
    const src = this.t(x);
    const tf = this.tf;
    return this.p(tf.tidy(() => tf.add(tf.mul(src, a), b)));
  }

  matmul(a: Tensor, b: Tensor, transposeB = false): Tensor {
    const x = this.t(a, 'a');
    const w = this.t(b, 'b');
    const ra = x.rank;
    const rb = w.rank;
    const K = x.shape[ra - 1];
    const Kb = transposeB ? w.shape[rb - 1] : w.shape[rb - 2];
    if (ra < 2 || rb < 2 || K !== Kb || (rb > 2 && (rb !== ra || w.shape.slice(0, -2).some((d, k) => d !== x.shape[k])))) {
      throw new ShapeError('matmul', 'a [..., M, K] with b [K, N] or [..., K, N]', `[${x.shape.join(', ')}] × [${w.shape.join(', ')}]${transposeB ? 'ᵀ' : ''}`);
    }
    const tf = this.tf;
    if (rb === 2 && ra > 2) {
      // A shared weight: one 2-D product over all leading rows (faster than a broadcast batch).
      const N = (transposeB ? w.shape[0] : w.shape[1]) as number;
      return this.p(tf.tidy(() => tf.reshape(tf.matMul(tf.reshape(x, [-1, K]), w, false, transposeB), [...x.shape.slice(0, -1), N])));
    }
    return this.p(tf.matMul(x, w, false, transposeB));
  }

  matvec(m: Tensor, v: Tensor): Tensor {
    const mat = this.t(m, 'm');
    const vec = this.t(v, 'v');
    const D = vec.shape[vec.rank - 1];
    if (mat.size !== vec.size * D || mat.shape[mat.rank - 1] !== D) {
      throw new ShapeError('matvec', `m [..., ${D}, ${D}] for v [${vec.shape.join(', ')}]`, `[${mat.shape.join(', ')}]`);
    }
    return this.p(this.tf.tidy(() => matVec(this.tf, mat, vec)));
  }

  // ---- reductions and safeguards ------------------------------------------------------------

  /** Scalar reads requested in the current synchronous stretch of work; read back together. */
  private pendingReads: { tensor: tfc.Tensor; owned: boolean; resolve: (v: Float32Array) => void; reject: (e: unknown) => void }[] = [];

  /**
   * Reads a small tensor computed in `fn`, then frees it. Reads requested in one synchronous
   * stretch (a solver iteration asks for its residual, step and non-finite count inside one tidy)
   * are coalesced into a single read-back, so an iteration stalls on the device once.
   */
  protected readScalars(fn: () => tfc.Tensor): Promise<Float32Array> {
    // Kept: the caller's enclosing tidy ends before the (asynchronous) read completes.
    return this.queueRead(this.tf.keep(this.tf.tidy(fn)), true);
  }

  /**
   * Queues the read of a small tensor into the current coalesced read-back; `owned`: the read
   * disposes it once done.
   */
  protected queueRead(tensor: tfc.Tensor, owned: boolean): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.pendingReads.push({ tensor, owned, resolve, reject });
      if (this.pendingReads.length === 1) queueMicrotask(() => void this.flushReads());
    });
  }

  private async flushReads(): Promise<void> {
    const batch = this.pendingReads.splice(0);
    try {
      const values = await this.readTogether(batch.map((r) => r.tensor));
      batch.forEach((r, i) => {
        r.resolve(values[i]);
      });
    } catch (err) {
      for (const r of batch) r.reject(err);
    } finally {
      this.tf.dispose(batch.filter((r) => r.owned).map((r) => r.tensor));
    }
  }

  /** The values of small tensors, read back together (here: concatenated, then one read). */
  protected async readTogether(tensors: readonly tfc.Tensor[]): Promise<Float32Array[]> {
    const tf = this.tf;
    const all = tensors.length === 1 ? tensors[0] : tf.tidy(() => tf.concat(tensors.map((t) => tf.reshape(t, [-1]))));
    try {
      const data = (await all.data()) as Float32Array;
      let offset = 0;
      return tensors.map((t) => {
        const part = data.slice(offset, offset + t.size);
        offset += t.size;
        return part;
      });
    } finally {
      if (all !== tensors[0]) all.dispose();
    }
  }

  /** `max |x|` with NaN propagated (tfjs's `max` skips NaN on some backends). */
  private maxAbsOf(x: tfc.Tensor): tfc.Tensor {
    const tf = this.tf;
    const nan = tf.any(tf.isNaN(x));
    return tf.where(nan, tf.scalar(Number.NaN), tf.max(tf.abs(x)));
  }

  async maxAbsDiff(a: Tensor, b: Tensor): Promise<number> {
    const x = this.t(a, 'a');
    const y = this.t(b, 'b');
    if (x.size !== y.size) throw new ShapeError('maxAbsDiff', `${x.size} elements`, String(y.size));
    if (x.size === 0) return 0;
    return (await this.readScalars(() => this.maxAbsOf(this.tf.sub(x, this.tf.reshape(y, x.shape)))))[0];
  }

  async maxAbs(a: Tensor): Promise<number> {
    const x = this.t(a);
    if (x.size === 0) return 0;
    return (await this.readScalars(() => this.maxAbsOf(x)))[0];
  }

  async sumSquaredDiff(a: Tensor, b: Tensor): Promise<number> {
    const x = this.t(a, 'a');
    const y = this.t(b, 'b');
    if (x.size !== y.size) throw new ShapeError('sumSquaredDiff', `${x.size} elements`, String(y.size));
    return (await this.readScalars(() => this.tf.sum(this.tf.squaredDifference(x, this.tf.reshape(y, x.shape)))))[0];
  }

  sanitize(x: Tensor, bound: number): Sanitized {
    const src = this.t(x);
    const tf = this.tf;
    const value = tf.tidy(() => tf.where(tf.isNaN(src), tf.zerosLike(src), tf.clipByValue(src, -bound, bound)));
    // One read-back for both counts: [non-finite, finite beyond ±bound].
    const counts = this.readScalars(() => {
      const finite = tf.isFinite(src);
      const beyond = tf.logicalAnd(finite, tf.greater(tf.abs(src), bound));
      return tf.stack([tf.sum(tf.cast(tf.logicalNot(finite), 'float32')), tf.sum(tf.cast(beyond, 'float32'))]);
    });
    return { value: this.p(value), nonFinite: counts.then((d) => d[0]), clipped: counts.then((d) => d[1]) };
  }

  applyCorrection(current: Tensor, correction: Tensor, bound: number): Corrected {
    const cur = this.t(current, 'current');
    const cor = this.t(correction, 'correction');
    if (cur.size !== cor.size) throw new ShapeError('applyCorrection', `correction of ${cur.size} elements`, `${cor.size} elements`);
    const moved = this.p(this.tf.tidy(() => this.tf.add(cur, this.tf.reshape(cor, cur.shape))));
    try {
      const clean = this.sanitize(moved, bound);
      return { ...clean, step: this.maxAbsDiff(clean.value, current) };
    } finally {
      this.dispose(moved);
    }
  }

  // ---- sequence primitives ------------------------------------------------------------------

  linearScanDiagonal(a: Tensor, b: Tensor, init: Tensor, options: ScanOptions = {}): Tensor {
    const [ta, tb, ti] = this.checkScan('linearScanDiagonal', a, b, init, false);
    return this.p(diagonalRecurrence(this.tf, ta, tb, ti, options.reverse === true));
  }

  linearScanDense(A: Tensor, b: Tensor, init: Tensor, options: ScanOptions = {}): Tensor {
    const [tA, tb, ti] = this.checkScan('linearScanDense', A, b, init, true);
    return this.p(denseRecurrence(this.tf, tA, tb, ti, options.reverse === true));
  }

  /** Validates scan operands; returns them as tfjs tensors (`init` reshaped to `[B, D]`). */
  protected checkScan(name: string, a: Tensor, b: Tensor, init: Tensor, dense: boolean): [tfc.Tensor, tfc.Tensor, tfc.Tensor] {
    const ta = this.t(a, dense ? 'A' : 'a');
    const tb = this.t(b, 'b');
    const ti = this.t(init, 'init');
    const [B, T, D] = tb.shape;
    const want = dense ? [B, T, D, D] : [B, T, D];
    if (tb.rank !== 3 || ta.shape.join() !== want.join() || ti.size !== B * D) {
      throw new ShapeError(
        name,
        `${dense ? 'A [B, T, D, D]' : 'a [B, T, D]'}, b [B, T, D] and init [B, D]`,
        `[${ta.shape}], [${tb.shape}], [${ti.shape}]`,
      );
    }
    return [ta, tb, ti];
  }

  kalmanDiagonal(model: KalmanModel, options: KalmanOptions = {}): KalmanMoments {
    const inputs = this.checkKalman(model, false);
    const m = kalmanDiagonalProgram(this.tf, inputs, options.smooth === true);
    return { mean: this.p(m.mean), covariance: this.p(m.covariance) };
  }

  kalmanDense(model: KalmanModel, options: KalmanOptions = {}): KalmanMoments {
    const inputs = this.checkKalman(model, true);
    const m = kalmanDenseProgram(this.tf, inputs, options.smooth === true);
    return { mean: this.p(m.mean), covariance: this.p(m.covariance) };
  }

  /** Checks a Kalman model (live tfjs tensors, shapes, variances); returns its tfjs tensors and noise. */
  protected checkKalman(model: KalmanModel, dense: boolean) {
    const [bias, F, y, init] = (['bias', 'transition', 'observation', 'init'] as const).map((f) => this.t(model[f], `model.${f}`));
    checkKalmanModel(model, dense);
    return { F, bias, y, init, q: model.processVariance, r: model.observationVariance };
  }
}

function normAxis(axis: number, rank: number): number {
  const ax = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(ax) || ax < 0 || ax >= rank) throw new InvalidArgumentError('axis', `an axis of a rank-${rank} tensor`, String(axis));
  return ax;
}

function checkBroadcast(a: readonly number[], b: readonly number[]): void {
  const rank = Math.max(a.length, b.length);
  for (let k = 0; k < rank; k++) {
    const da = a[a.length - rank + k] ?? 1;
    const db = b[b.length - rank + k] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new ShapeError('binary', 'broadcastable shapes', `[${a.join(', ')}] and [${b.join(', ')}]`);
  }
}
