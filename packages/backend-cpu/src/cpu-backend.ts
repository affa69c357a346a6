import {
  type BackendCapabilities,
  type BackendMemory,
  type BindContext,
  type CellProgram,
  type FusedCell,
  bindHostProgram,
  type BinaryOp,
  type ComputeBackend,
  type DType,
  type HostArray,
  InvalidArgumentError,
  type KalmanModel,
  type KalmanMoments,
  type KalmanOptions,
  type Sanitized,
  type Corrected,
  type ScanOptions,
  ShapeError,
  type Tensor,
  type UnaryOp,
  checkKalmanModel,
  describeValue,
  shapeSize,
} from '@pelk/core';
import { applyBinary, binaryBroadcast, binaryCycleB, unaryKernel } from './kernels/elementwise.js';
import { matmulNN, matmulNT, matvec } from './kernels/linalg.js';
import { denseFilter, denseKalmanWork, denseSmoother, scalarFilter, scalarSmoother } from './kernels/kalman.js';
import { denseScanInPlace, diagonalScanInPlace } from './kernels/scan.js';
import { BufferPool, CpuTensor, PooledStorage, type TensorStorage } from './storage.js';

/** Options of {@link CpuBackend}. */
export interface CpuBackendOptions {
  /**
   * Memory budget of one evaluation in bytes (core refuses problems whose estimated peak exceeds
   * it, before allocating). Default: {@link defaultCpuMemoryBudget} — 70 % of the machine's
   * memory (`os.totalmem()` on Node, `navigator.deviceMemory` in browsers, else 4 GiB).
   */
  readonly maxTotalBytes?: number;
  /**
   * Bytes of freed buffers kept for reuse between `trim()` calls (core trims after every
   * evaluation). Default 2 GiB, so the large per-iteration tensors of long sequences are reused
   * instead of being allocated and zeroed again every iteration.
   */
  readonly poolBytes?: number;
}

type Scope = CpuTensor[];

/**
 * The plain-TypeScript backend: row-major typed arrays, float64 and float32, no dependencies.
 * It runs anywhere JavaScript runs and is pelk's float64 oracle. Its scans are real associative
 * (work-efficient) scans; temporaries are recycled through a buffer pool, so per-step loops do
 * not allocate typed arrays.
 *
 * @example
 * ```ts
 * import { evaluate } from '@pelk/core';
 * import { CpuBackend } from '@pelk/backend-cpu';
 * const result = await evaluate(cell, inputs, { backend: new CpuBackend(), method: 'deer' });
 * ```
 */
export class CpuBackend implements ComputeBackend {
  readonly name: string = 'cpu';
  readonly capabilities: BackendCapabilities;
  /** Scratch arrays of the kernels (scans, Kalman passes); tensors live in {@link storage}. */
  private readonly pool: BufferPool;
  /** Where tensors live. */
  protected readonly storage: TensorStorage;
  private readonly scopes: Scope[] = [];
  private liveTensors = 0;
  private liveBytes = 0;
  private peakBytes = 0;

  /** @param storage where tensors live (subclasses: WebAssembly memory); default: recycled typed arrays. */
  constructor(options: CpuBackendOptions = {}, storage?: TensorStorage) {
    const maxTotal = options.maxTotalBytes ?? defaultCpuMemoryBudget();
    if (typeof maxTotal !== 'number' || !Number.isFinite(maxTotal) || maxTotal <= 0) {
      throw new InvalidArgumentError('options.maxTotalBytes', 'a positive number', describeValue(maxTotal));
    }
    this.pool = new BufferPool(options.poolBytes ?? 2 * 2 ** 30);
    this.storage = storage ?? new PooledStorage(this.pool);
    this.capabilities = {
      dtypes: ['float64', 'float32'],
      epsilon: { float64: 2 ** -53, float32: 2 ** -24 },
      device: describeHost(),
      prefersSequential: true,
      // One typed array: at most 2^31 elements (and never more than the budget holds in float32).
      limits: { maxTensorElements: Math.min(2 ** 31, Math.floor(maxTotal / 4)), maxTotalBytes: maxTotal },
    };
  }

  // ---- memory -------------------------------------------------------------------------------

  /** A new tensor with stale contents (every op writes all of its output). */
  protected make(shape: readonly number[], dtype: DType): CpuTensor {
    return this.track(new CpuTensor(this.storage.allocate(dtype, shapeSize(shape)), shape, dtype, this));
  }

  private track(t: CpuTensor): CpuTensor {
    this.liveTensors++;
    this.liveBytes += t.storage.data.byteLength;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    const scope = this.scopes[this.scopes.length - 1];
    scope?.push(t);
    return t;
  }

  protected t(x: Tensor, field = 'tensor'): CpuTensor {
    if (!(x instanceof CpuTensor) || x.owner !== this) {
      throw new InvalidArgumentError(field, `a tensor of this ${this.name} backend`, describeValue(x));
    }
    if (x.disposed) throw new InvalidArgumentError(field, 'a live tensor', 'a disposed tensor');
    return x;
  }

  fromArray(data: ArrayLike<number>, shape: readonly number[], dtype: DType): Tensor {
    const n = shapeSize(shape);
    if (data.length !== n) throw new ShapeError('data', `${n} elements for shape [${shape.join(', ')}]`, String(data.length));
    const out = this.make([...shape], dtype);
    const o = out.data;
    // Typed arrays: one native copy (with conversion); anything else element by element.
    if (ArrayBuffer.isView(data) && !(data instanceof DataView)) o.set(data as unknown as ArrayLike<number>);
    else for (let i = 0; i < n; i++) o[i] = data[i];
    return out;
  }

  fill(shape: readonly number[], value: number, dtype: DType): Tensor {
    const out = this.make([...shape], dtype);
    out.data.fill(value);
    return out;
  }

  async read(x: Tensor): Promise<HostArray> {
    return this.readSync(x);
  }

  /** Synchronous copy to the host (the CPU backend needs no await). */
  readSync(x: Tensor): HostArray {
    return this.t(x).data.slice();
  }

  dispose(x: Tensor | readonly Tensor[]): void {
    const list = Array.isArray(x) ? (x as readonly Tensor[]) : [x as Tensor];
    for (const item of list) {
      if (!(item instanceof CpuTensor) || item.disposed) continue;
      item.disposed = true;
      this.liveTensors--;
      this.liveBytes -= item.storage.data.byteLength;
      if (--item.storage.refs === 0) this.storage.release(item.storage);
    }
  }

  tidy<R extends Tensor | readonly Tensor[] | Record<string, Tensor> | void>(fn: () => R): R {
    const scope: Scope = [];
    this.scopes.push(scope);
    let result: R;
    try {
      result = fn();
    } catch (err) {
      this.scopes.pop();
      this.dispose(scope.filter((t) => !t.kept));
      throw err;
    }
    this.scopes.pop();
    const survivors: unknown[] =
      result instanceof CpuTensor ? [result] : Array.isArray(result) ? result : result && typeof result === 'object' ? Object.values(result) : [];
    const parent = this.scopes[this.scopes.length - 1];
    for (const t of scope) {
      if (t.kept || t.disposed) continue;
      if (survivors.includes(t)) parent?.push(t);
      else this.dispose(t);
    }
    return result;
  }

  keep<T extends Tensor>(x: T): T {
    this.t(x).kept = true;
    return x;
  }

  memory(): BackendMemory {
    return { tensors: this.liveTensors, bytes: this.liveBytes, peakBytes: this.peakBytes };
  }

  resetPeakMemory(): void {
    this.peakBytes = this.liveBytes;
  }

  /** Counts a primitive's scratch space (work arrays outside tensors) in the peak-memory mark. */
  protected noteWorkspace(bytes: number): void {
    if (this.liveBytes + bytes > this.peakBytes) this.peakBytes = this.liveBytes + bytes;
  }

  trim(): void {
    this.pool.clear();
    this.storage.trim();
  }

  /** The tensor's typed array itself (no copy): host kernels read it; see `ComputeBackend.hostData`. */
  hostData(x: Tensor): HostArray {
    return this.t(x).data;
  }

  /** Fused cell kernels: core's host kernels over this backend's storage (see `ComputeBackend.bindProgram`). */
  bindProgram(program: CellProgram, context: BindContext): FusedCell | undefined {
    return bindHostProgram(this, program, context);
  }

  // ---- shape ops ----------------------------------------------------------------------------

  reshape(x: Tensor, shape: readonly number[]): Tensor {
    const src = this.t(x);
    const resolved = resolveShape(shape, src.size);
    src.storage.refs++;
    return this.track(new CpuTensor(src.storage, resolved, src.dtype, this));
  }

  cast(x: Tensor, dtype: DType): Tensor {
    const src = this.t(x);
    const out = this.make(src.shape, dtype);
    out.data.set(src.data);
    return out;
  }

  slice(x: Tensor, axis: number, start: number, size: number): Tensor {
    const src = this.t(x);
    const ax = normAxis(axis, src.shape.length);
    const dim = src.shape[ax];
    if (!Number.isInteger(start) || !Number.isInteger(size) || start < 0 || size < 0 || start + size > dim) {
      throw new InvalidArgumentError('slice', `0 ≤ start ≤ start + size ≤ ${dim}`, `start ${start}, size ${size}`);
    }
    const outer = shapeSize(src.shape.slice(0, ax));
    const inner = shapeSize(src.shape.slice(ax + 1));
    const shape = [...src.shape];
    shape[ax] = size;
    const out = this.make(shape, src.dtype);
    const s = src.data;
    const o = out.data;
    const run = size * inner;
    for (let r = 0; r < outer; r++) {
      const from = (r * dim + start) * inner;
      const to = r * run;
      // A plain loop: subarray() would allocate a view object per row.
      for (let k = 0; k < run; k++) o[to + k] = s[from + k];
    }
    return out;
  }

  concat(ts: readonly Tensor[], axis: number): Tensor {
    if (ts.length === 0) throw new InvalidArgumentError('concat', 'at least one tensor', 'none');
    const srcs = ts.map((x) => this.t(x));
    const first = srcs[0];
    const ax = normAxis(axis, first.shape.length);
    for (const s of srcs) {
      if (s.shape.length !== first.shape.length || s.shape.some((d, k) => k !== ax && d !== first.shape[k])) {
        throw new ShapeError('concat', `shapes matching [${first.shape.join(', ')}] except axis ${ax}`, `[${s.shape.join(', ')}]`);
      }
    }
    const shape = [...first.shape];
    shape[ax] = srcs.reduce((a, s) => a + s.shape[ax], 0);
    const outer = shapeSize(first.shape.slice(0, ax));
    const inner = shapeSize(first.shape.slice(ax + 1));
    const out = this.make(shape, first.dtype);
    const o = out.data;
    const rowOut = shape[ax] * inner;
    let offset = 0;
    for (const s of srcs) {
      const run = s.shape[ax] * inner;
      for (let r = 0; r < outer; r++) o.set(s.data.subarray(r * run, (r + 1) * run), r * rowOut + offset);
      offset += run;
    }
    return out;
  }

  roll(x: Tensor, shift: number): Tensor {
    const src = this.t(x);
    const n = src.shape[src.shape.length - 1];
    const out = this.make(src.shape, src.dtype);
    const s = src.data;
    const o = out.data;
    const k = (((shift % n) + n) % n) | 0;
    for (let base = 0; base < s.length; base += n) {
      for (let i = 0; i < n; i++) {
        const from = i - k;
        o[base + i] = s[base + (from < 0 ? from + n : from)];
      }
    }
    return out;
  }

  shiftTime(s: Tensor, s0: Tensor): Tensor {
    const x = this.t(s, 's');
    const init = this.t(s0, 's0');
    const [B, T, D] = x.shape;
    if (x.shape.length !== 3 || init.size !== B * D) {
      throw new ShapeError('shiftTime', `s [B, T, D] and s0 [B, D]`, `[${x.shape.join(', ')}] and [${init.shape.join(', ')}]`);
    }
    const out = this.make(x.shape, x.dtype);
    const o = out.data;
    const src = x.data;
    for (let b = 0; b < B; b++) {
      const base = b * T * D;
      o.set(init.data.subarray(b * D, (b + 1) * D), base);
      o.set(src.subarray(base, base + (T - 1) * D), base + D);
    }
    return out;
  }

  timeStep(x: Tensor, t: number): Tensor {
    const src = this.t(x);
    const [B, T, K] = src.shape;
    const out = this.make([B, K], src.dtype);
    const s = src.data;
    const o = out.data;
    for (let b = 0; b < B; b++) {
      const from = (b * T + t) * K;
      const to = b * K;
      for (let k = 0; k < K; k++) o[to + k] = s[from + k];
    }
    return out;
  }

  stackTime(steps: readonly Tensor[]): Tensor {
    const srcs = steps.map((x) => this.t(x));
    const [B, K] = srcs[0].shape;
    const T = srcs.length;
    const out = this.make([B, T, K], srcs[0].dtype);
    const o = out.data;
    for (let t = 0; t < T; t++) {
      const d = srcs[t].data;
      for (let b = 0; b < B; b++) o.set(d.subarray(b * K, (b + 1) * K), (b * T + t) * K);
    }
    return out;
  }

  transpose(x: Tensor): Tensor {
    const src = this.t(x);
    const r = src.shape.length;
    if (r < 2) throw new ShapeError('transpose', 'a tensor of rank ≥ 2', `rank ${r}`);
    const M = src.shape[r - 2];
    const N = src.shape[r - 1];
    const out = this.make([...src.shape.slice(0, -2), N, M], src.dtype);
    const s = src.data;
    const o = out.data;
    for (let base = 0; base < s.length; base += M * N) {
      for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) o[base + j * M + i] = s[base + i * N + j];
    }
    return out;
  }

  diagEmbed(v: Tensor): Tensor {
    const src = this.t(v);
    const D = src.shape[src.shape.length - 1];
    const out = this.make([...src.shape, D], src.dtype);
    const o = out.data;
    o.fill(0);
    const rows = src.size / D;
    for (let r = 0; r < rows; r++) for (let i = 0; i < D; i++) o[r * D * D + i * D + i] = src.data[r * D + i];
    return out;
  }

  diagPart(m: Tensor): Tensor {
    const src = this.t(m);
    const D = src.shape[src.shape.length - 1];
    const out = this.make(src.shape.slice(0, -1), src.dtype);
    const rows = out.size / D;
    for (let r = 0; r < rows; r++) for (let i = 0; i < D; i++) out.data[r * D + i] = src.data[r * D * D + i * D + i];
    return out;
  }

  // ---- arithmetic ---------------------------------------------------------------------------

  unary(op: UnaryOp, x: Tensor): Tensor {
    const src = this.t(x);
    const out = this.make(src.shape, src.dtype);
    unaryKernel(op, src.data, out.data);
    return out;
  }

  binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
    const x = this.t(a, 'a');
    const y = this.t(b, 'b');
    if (x.size === y.size && sameShape(x.shape, y.shape)) {
      // The common case, without building a broadcast shape.
      const same = this.make(x.shape, x.dtype);
      binaryCycleB(op, x.data, y.data, same.data);
      return same;
    }
    const shape = broadcastShape(x.shape, y.shape);
    const out = this.make(shape, x.dtype);
    if (x.size === out.size && (y.size === 1 || isSuffix(y.shape, x.shape))) {
      binaryCycleB(op, x.data, y.data, out.data);
    } else if (isRowScale(x.shape, y.shape, shape)) {
      // [..., M, 1] ∘ [M, K]: diag(c)·W, the building block of every dense Jacobian.
      binaryRowScale(op, x.data, y.data, out.data, shape[shape.length - 1]);
    } else if (y.size === out.size && x.size === 1 && (op === 'add' || op === 'mul' || op === 'max' || op === 'min')) {
      binaryCycleB(op, y.data, x.data, out.data);
    } else {
      binaryBroadcast(op, x.data, y.data, out.data, shape, stridesFor(x.shape, shape), stridesFor(y.shape, shape));
    }
    return out;
  }

  affine(x: Tensor, a: number, b: number): Tensor {
    const src = this.t(x);
    const out = this.make(src.shape, src.dtype);
    const s = src.data;
    const o = out.data;
    for (let i = 0; i < s.length; i++) o[i] = a * s[i] + b;
    return out;
  }

  matmul(a: Tensor, b: Tensor, transposeB = false): Tensor {
    const x = this.t(a, 'a');
    const w = this.t(b, 'b');
    const ra = x.shape.length;
    const rb = w.shape.length;
    const M = x.shape[ra - 2];
    const K = x.shape[ra - 1];
    const [Kb, N] = transposeB ? [w.shape[rb - 1], w.shape[rb - 2]] : [w.shape[rb - 2], w.shape[rb - 1]];
    if (ra < 2 || rb < 2 || K !== Kb || (rb > 2 && (rb !== ra || w.shape.slice(0, -2).some((d, k) => d !== x.shape[k])))) {
      throw new ShapeError('matmul', 'a [..., M, K] with b [K, N] or [..., K, N]', `[${x.shape.join(', ')}] × [${w.shape.join(', ')}]${transposeB ? 'ᵀ' : ''}`);
    }
    const out = this.make([...x.shape.slice(0, -1), N], x.dtype);
    const kernel = transposeB ? matmulNT : matmulNN;
    if (rb === 2) {
      kernel(x.data, 0, w.data, 0, out.data, 0, x.size / K, K, N);
    } else {
      const batches = x.size / (M * K);
      for (let i = 0; i < batches; i++) kernel(x.data, i * M * K, w.data, i * K * N, out.data, i * M * N, M, K, N);
    }
    return out;
  }

  matvec(m: Tensor, v: Tensor): Tensor {
    const mat = this.t(m, 'm');
    const vec = this.t(v, 'v');
    const D = vec.shape[vec.shape.length - 1];
    if (mat.size !== vec.size * D || mat.shape[mat.shape.length - 1] !== D) {
      throw new ShapeError('matvec', `m [..., ${D}, ${D}] for v [${vec.shape.join(', ')}]`, `[${mat.shape.join(', ')}]`);
    }
    const out = this.make(vec.shape, vec.dtype);
    const rows = vec.size / D;
    for (let r = 0; r < rows; r++) matvec(mat.data, r * D * D, vec.data, r * D, out.data, r * D, D);
    return out;
  }

  // ---- reductions and safeguards ------------------------------------------------------------

  async maxAbsDiff(a: Tensor, b: Tensor): Promise<number> {
    const x = this.t(a, 'a').data;
    const y = this.t(b, 'b').data;
    if (x.length !== y.length) throw new ShapeError('maxAbsDiff', `${x.length} elements`, String(y.length));
    let m = 0;
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i] - y[i]);
      if (d > m) m = d;
      else if (Number.isNaN(d)) return Number.NaN;
    }
    return m;
  }

  async maxAbs(a: Tensor): Promise<number> {
    const x = this.t(a).data;
    let m = 0;
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i]);
      if (d > m) m = d;
      else if (Number.isNaN(d)) return Number.NaN;
    }
    return m;
  }

  async sumSquaredDiff(a: Tensor, b: Tensor): Promise<number> {
    const x = this.t(a, 'a').data;
    const y = this.t(b, 'b').data;
    if (x.length !== y.length) throw new ShapeError('sumSquaredDiff', `${x.length} elements`, String(y.length));
    let s = 0;
    for (let i = 0; i < x.length; i++) {
      const d = x[i] - y[i];
      s += d * d;
    }
    return s;
  }

  sanitize(x: Tensor, bound: number): Sanitized {
    const src = this.t(x);
    const out = this.make(src.shape, src.dtype);
    const s = src.data;
    const o = out.data;
    let bad = 0;
    let clipped = 0;
    for (let i = 0; i < s.length; i++) {
      const v = s[i];
      if (Number.isNaN(v)) {
        o[i] = 0;
        bad++;
      } else if (v > bound || v < -bound) {
        if (Number.isFinite(v)) clipped++;
        else bad++;
        o[i] = v > 0 ? bound : -bound;
      } else o[i] = v;
    }
    return { value: out, nonFinite: Promise.resolve(bad), clipped: Promise.resolve(clipped) };
  }

  applyCorrection(current: Tensor, correction: Tensor, bound: number): Corrected {
    const cur = this.t(current, 'current');
    const cor = this.t(correction, 'correction');
    if (cur.size !== cor.size || cur.dtype !== cor.dtype) {
      throw new ShapeError('applyCorrection', `correction of ${cur.size} ${cur.dtype} elements`, `${cor.size} ${cor.dtype} elements`);
    }
    const out = this.make(cur.shape, cur.dtype);
    const s = cur.data;
    const c = cor.data;
    const o = out.data;
    let bad = 0;
    let clipped = 0;
    let step = 0;
    // The sum as the dtype computes it (float32 sums round before they are classified and clipped).
    const round = cur.dtype === 'float32' ? Math.fround : (x: number) => x;
    for (let i = 0; i < s.length; i++) {
      let v = round(s[i] + c[i]);
      if (Number.isNaN(v)) {
        v = 0;
        bad++;
      } else if (v > bound || v < -bound) {
        if (Number.isFinite(v)) clipped++;
        else bad++;
        v = v > 0 ? bound : -bound;
      }
      o[i] = v;
      const d = Math.abs(o[i] - s[i]);
      // NaN sticks (a NaN entry of `current`).
      if (!(d <= step) && !Number.isNaN(step)) step = d;
    }
    return { value: out, nonFinite: Promise.resolve(bad), clipped: Promise.resolve(clipped), step: Promise.resolve(step) };
  }

  // ---- sequence primitives ------------------------------------------------------------------

  linearScanDiagonal(a: Tensor, b: Tensor, init: Tensor, options: ScanOptions = {}): Tensor {
    const ta = this.t(a, 'a');
    const tb = this.t(b, 'b');
    const ti = this.t(init, 'init');
    const [B, T, D] = tb.shape;
    if (tb.shape.length !== 3 || ta.size !== tb.size || ti.size !== B * D) {
      throw new ShapeError('linearScanDiagonal', 'a, b [B, T, D] and init [B, D]', `[${ta.shape}], [${tb.shape}], [${ti.shape}]`);
    }
    const out = this.make(tb.shape, tb.dtype);
    const n = T * D;
    const wa = this.pool.take(tb.dtype, n);
    const wb = this.pool.take(tb.dtype, n);
    const ws = this.pool.take(tb.dtype, n);
    const res = this.pool.take(tb.dtype, n);
    this.noteWorkspace(4 * wa.byteLength);
    for (let bi = 0; bi < B; bi++) {
      const off = bi * n;
      copyTime(ta.data, off, wa, T, D, options.reverse);
      copyTime(tb.data, off, wb, T, D, options.reverse);
      diagonalScanInPlace(wa, wb, ti.data, bi * D, res, ws, T, D);
      copyTime(res, 0, out.data, T, D, options.reverse, off);
    }
    for (const w of [wa, wb, ws, res]) this.pool.give(w);
    return out;
  }

  linearScanDense(A: Tensor, b: Tensor, init: Tensor, options: ScanOptions = {}): Tensor {
    const tA = this.t(A, 'A');
    const tb = this.t(b, 'b');
    const ti = this.t(init, 'init');
    const [B, T, D] = tb.shape;
    if (tb.shape.length !== 3 || tA.size !== tb.size * D || ti.size !== B * D) {
      throw new ShapeError('linearScanDense', 'A [B, T, D, D], b [B, T, D] and init [B, D]', `[${tA.shape}], [${tb.shape}], [${ti.shape}]`);
    }
    const out = this.make(tb.shape, tb.dtype);
    const n = T * D;
    const wA = this.pool.take(tb.dtype, n * D);
    const wb = this.pool.take(tb.dtype, n);
    const ws = this.pool.take(tb.dtype, n);
    const res = this.pool.take(tb.dtype, n);
    const tmpM = this.pool.take(tb.dtype, D * D);
    const tmpV = this.pool.take(tb.dtype, D);
    this.noteWorkspace(wA.byteLength + 3 * wb.byteLength);
    for (let bi = 0; bi < B; bi++) {
      copyTime(tA.data, bi * n * D, wA, T, D * D, options.reverse);
      copyTime(tb.data, bi * n, wb, T, D, options.reverse);
      denseScanInPlace(wA, wb, ti.data, bi * D, res, ws, tmpM, tmpV, T, D);
      copyTime(res, 0, out.data, T, D, options.reverse, bi * n);
    }
    for (const w of [wA, wb, ws, res, tmpM, tmpV]) this.pool.give(w);
    return out;
  }

  kalmanDiagonal(model: KalmanModel, options: KalmanOptions = {}): KalmanMoments {
    const [B, T, D] = checkKalman(model, false, (x, f) => this.t(x, f));
    const [F, bias, y, init] = [model.transition, model.bias, model.observation, model.init].map((x) => this.t(x).data);
    const dtype = model.bias.dtype;
    const mean = this.make([B, T, D], dtype);
    const variance = this.make([B, T, D], dtype);
    const noise = { q: model.processVariance, r: model.observationVariance };
    const work = Array.from({ length: 7 }, () => this.pool.take(dtype, T * D));
    const zero = this.pool.take(dtype, D);
    this.noteWorkspace(7 * work[0].byteLength);
    for (let b = 0; b < B; b++) {
      const off = b * T * D;
      scalarFilter(F, bias, y, off, init, b * D, noise, T, D, work, mean.data, variance.data, off);
      if (options.smooth) scalarSmoother(F, bias, off, noise, T, D, [...work.slice(0, 6), zero], mean.data, variance.data, off);
    }
    for (const w of [...work, zero]) this.pool.give(w);
    return { mean, covariance: variance };
  }

  kalmanDense(model: KalmanModel, options: KalmanOptions = {}): KalmanMoments {
    const [B, T, D] = checkKalman(model, true, (x, f) => this.t(x, f));
    const [F, bias, y, init] = [model.transition, model.bias, model.observation, model.init].map((x) => this.t(x).data);
    const dtype = model.bias.dtype;
    const mean = this.make([B, T, D], dtype);
    const cov = this.make([B, T, D, D], dtype);
    const noise = { q: model.processVariance, r: model.observationVariance };
    const work = denseKalmanWork(T, D);
    this.noteWorkspace(Object.values(work).reduce((n, a) => n + a.byteLength, 0));
    for (let b = 0; b < B; b++) {
      const off = b * T * D;
      denseFilter(F, bias, y, off, init, b * D, noise, T, D, work, mean.data, cov.data, off);
      if (options.smooth) denseSmoother(F, bias, off, noise, T, D, work, mean.data, cov.data, off);
    }
    return { mean, covariance: cov };
  }
}

/** Fraction of the machine's memory one evaluation may use by default. */
const MEMORY_FRACTION = 0.7;

/**
 * The default memory budget of one evaluation on the CPU backend, in bytes: 70 % of the machine's
 * memory — `os.totalmem()` on Node (through `process.getBuiltinModule`, so nothing is imported in
 * browsers), `navigator.deviceMemory` GiB in browsers that report it, else 4 GiB. Typed arrays live
 * outside the JavaScript heap, so the heap limit does not bound them.
 */
export function defaultCpuMemoryBudget(): number {
  const g = globalThis as {
    process?: { getBuiltinModule?: (id: string) => { totalmem?: () => number } | undefined };
    navigator?: { deviceMemory?: number };
  };
  let total = 0;
  try {
    total = g.process?.getBuiltinModule?.('node:os')?.totalmem?.() ?? 0;
  } catch {
    total = 0;
  }
  if (!(total > 0) && typeof g.navigator?.deviceMemory === 'number') total = g.navigator.deviceMemory * 2 ** 30;
  if (!(total > 0)) total = 4 * 2 ** 30;
  return Math.floor(total * MEMORY_FRACTION);
}

/** Checks that the model's tensors are live cpu tensors, then their shapes and variances; returns B, T, D. */
function checkKalman(model: KalmanModel, dense: boolean, t: (x: Tensor, f: string) => CpuTensor): [number, number, number] {
  for (const f of ['bias', 'transition', 'observation', 'init'] as const) t(model[f], `model.${f}`);
  return checkKalmanModel(model, dense);
}

/** Copies `T` rows of `width` from `src` (at `srcOff`) to `dst` (at `dstOff`), reversing time if asked. */
function copyTime(src: HostArray, srcOff: number, dst: HostArray, T: number, width: number, reverse?: boolean, dstOff = 0): void {
  if (!reverse) {
    dst.set(src.subarray(srcOff, srcOff + T * width), dstOff);
    return;
  }
  for (let t = 0; t < T; t++) {
    const from = srcOff + t * width;
    dst.set(src.subarray(from, from + width), dstOff + (T - 1 - t) * width);
  }
}

function normAxis(axis: number, rank: number): number {
  const ax = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(ax) || ax < 0 || ax >= rank) throw new InvalidArgumentError('axis', `an axis of a rank-${rank} tensor`, String(axis));
  return ax;
}

function resolveShape(shape: readonly number[], size: number): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (free >= 0) {
    const rest = out.reduce((a, d, k) => (k === free ? a : a * d), 1);
    out[free] = rest === 0 ? 0 : size / rest;
  }
  if (shapeSize(out) !== size || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError('reshape', `a shape with ${size} elements`, `[${shape.join(', ')}]`);
  }
  return out;
}

function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let k = 0; k < rank; k++) {
    const da = a[a.length - rank + k] ?? 1;
    const db = b[b.length - rank + k] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError('binary', 'broadcastable shapes', `[${a.join(', ')}] and [${b.join(', ')}]`);
    }
    out[k] = da === 1 ? db : da;
  }
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** `a` is `[..., M, 1]` and `b` is `[M, K]` (or `[..., M, K]` with a's leading shape). */
function isRowScale(a: readonly number[], b: readonly number[], out: readonly number[]): boolean {
  const r = out.length;
  if (r < 2 || a.length !== r || a[r - 1] !== 1 || b.length < 2) return false;
  if (a.slice(0, -1).some((d, k) => d !== out[k])) return false;
  return isSuffix(b, out);
}

/** `out[r, k] = op(a[r], b[r mod M, k])` for the row-scale broadcast. */
function binaryRowScale(op: BinaryOp, a: HostArray, b: HostArray, out: HostArray, K: number): void {
  const bRows = b.length / K;
  const rowsOut = a.length;
  for (let r = 0; r < rowsOut; r++) {
    const c = a[r];
    const o = r * K;
    const w = (r % bRows) * K;
    switch (op) {
      case 'mul':
        for (let k = 0; k < K; k++) out[o + k] = c * b[w + k];
        break;
      case 'add':
        for (let k = 0; k < K; k++) out[o + k] = c + b[w + k];
        break;
      default:
        for (let k = 0; k < K; k++) out[o + k] = applyBinary(op, c, b[w + k]);
    }
  }
}

/** True if `small` (ignoring leading 1s) equals the trailing axes of `big`. */
function isSuffix(small: readonly number[], big: readonly number[]): boolean {
  let k = 0;
  while (k < small.length && small[k] === 1) k++;
  const tail = small.slice(k);
  if (tail.length > big.length) return false;
  return tail.every((d, i) => d === big[big.length - tail.length + i]);
}

/** Strides of `shape` over `outShape` (0 on broadcast axes). */
function stridesFor(shape: readonly number[], outShape: readonly number[]): number[] {
  const rank = outShape.length;
  const strides = new Array<number>(rank).fill(0);
  let stride = 1;
  for (let k = rank - 1; k >= 0; k--) {
    const d = shape[shape.length - rank + k] ?? 1;
    strides[k] = d === 1 ? 0 : stride;
    stride *= d;
  }
  return strides;
}

function describeHost(): string {
  const g = globalThis as { navigator?: { hardwareConcurrency?: number; userAgent?: string } };
  const cores = g.navigator?.hardwareConcurrency;
  return `JavaScript (typed arrays)${cores ? `, ${cores} logical cores` : ''}`;
}
