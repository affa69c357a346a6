/// <reference types="@webgpu/types" />
import {
  type BindContext,
  type CellProgram,
  type Corrected,
  type FusedCell,
  InvalidArgumentError,
  type KalmanModel,
  type KalmanMoments,
  type KalmanOptions,
  PelkError,
  type ScanOptions,
  ShapeError,
  type Tensor,
  describeValue,
} from '@pelk/core';
import { TfjsBackend, type TfjsLimitsOptions } from '@pelk/backend-tfjs-node';
import type { WebGPUBackend as TfWebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type * as tfc from '@tensorflow/tfjs-core';
import { bindWebGpuProgram, emptyGpuTensor } from './fused/bind.js';
import { correctionKernel, correctionUniforms, correctionWorkgroups } from './fused/correction.js';
import { type CommandRecorder, type GpuCounters, recorderFor } from './fused/recorder.js';
import { checkKalmanDenseLimits, kalmanDenseGpu } from './kernels/dense-kalman.js';
import { type KernelOptions, type ScanLayout, denseScan, diagonalScan, kalmanDiagonal } from './kernels/index.js';

/** Options of the WebGPU backend's kernels and limits. */
export interface WebGpuLimitsOptions extends TfjsLimitsOptions {
  /** Time steps per chunk of the scan kernels (tests force tiny values to exercise every level). */
  readonly chunk?: number;
  /** Memory layout of the diagonal and Kalman scans; default `'auto'` (see {@link WebGpuBackend.scanLayout}). */
  readonly scanLayout?: ScanLayout;
  /**
   * Bytes of free GPU buffers that tfjs's buffer pool may keep after {@link WebGpuBackend.trim}
   * (which core calls when every evaluation ends). Default 0: an evaluation's buffers are destroyed
   * when it returns, so nothing stays resident between evaluations. Within one evaluation the pool
   * reuses buffers across iterations (it holds at most the iteration's own working set); a cap
   * above 0 keeps up to that many bytes of pooled buffers for the next evaluation.
   */
  readonly maxPooledBytes?: number;
}

/** The parts of tfjs-backend-webgpu's `BufferManager` (4.x) that {@link WebGpuBackend.trim} uses. */
interface TfBufferPool {
  freeBuffers: Map<string, GPUBuffer[]>;
  numFreeBuffers: number;
  numBytesAllocated: number;
  numUsedBuffers: number;
  numBytesUsed: number;
}

/** What tfjs's buffer pool holds: buffers in use (live tensors, pending uniforms) and free ones. */
export interface GpuPoolUsage {
  /** Buffers in use. */
  readonly usedBuffers: number;
  /** Bytes of the buffers in use. */
  readonly usedBytes: number;
  /** Free buffers kept for reuse. */
  readonly freeBuffers: number;
  /** Bytes of all buffers the pool has allocated and not destroyed (in use + free). */
  readonly allocatedBytes: number;
}

/**
 * The default memory budget of one evaluation on WebGPU, in bytes. WebGPU does not report the
 * device's memory, so the budget derives from the adapter's limits: 16 of its largest buffers
 * (`maxBufferSize`), capped at 4 GiB (2^30 float32 values); 4 GiB when no limits are known.
 */
export function webgpuMemoryBudget(limits?: { readonly maxBufferSize?: number }): number {
  const largest = limits?.maxBufferSize;
  return typeof largest === 'number' && largest > 0 ? Math.min(4 * 2 ** 30, 16 * largest) : 4 * 2 ** 30;
}

/**
 * pelk on WebGPU: the TensorFlow.js backend's ops on `@tensorflow/tfjs-backend-webgpu`, with the
 * sequence primitives replaced by pelk's own WGSL kernels — the diagonal and dense linear scans,
 * the scalar and dense Kalman filters/smoothers (a fixed number of dispatches per call), the Newton
 * update — and fused WGSL kernels for the built-in cells (`bindProgram`). float32 only.
 *
 * Create it with {@link createWebGpuBackend}; release the device with {@link WebGpuBackend.destroy}.
 *
 * @example
 * ```ts
 * const backend = await createWebGpuBackend();
 * const result = await evaluate(cell, inputs, { backend, method: 'quasi-deer' });
 * result.dispose();
 * await backend.destroy();
 * ```
 */
export class WebGpuBackend extends TfjsBackend {
  override readonly name: string = 'webgpu';
  /** The tfjs WebGPU backend object (its `device` is the GPUDevice pelk's kernels run on). */
  readonly gpu: TfWebGPUBackend;
  private readonly chunk: number | undefined;
  private layout: ScanLayout = 'auto';
  private readonly maxPooledBytes: number;
  private lostReason: string | null = null;
  /** Records pelk's kernels into tfjs's command stream and counts dispatches and submissions. */
  private readonly recorder: CommandRecorder;

  constructor(tf: typeof tfc, gpu: TfWebGPUBackend, options: WebGpuLimitsOptions, device: string) {
    super(tf, 'webgpu', { ...options, maxTotalBytes: options.maxTotalBytes ?? webgpuMemoryBudget(gpu.device?.limits) }, device);
    this.gpu = gpu;
    this.chunk = options.chunk;
    const layout = options.scanLayout ?? 'auto';
    if (layout !== 'auto' && layout !== 'staged' && layout !== 'direct') {
      throw new InvalidArgumentError('options.scanLayout', "'auto', 'staged' or 'direct'", describeValue(layout));
    }
    this.layout = layout;
    const cap = options.maxPooledBytes ?? 0;
    if (typeof cap !== 'number' || !(cap >= 0) || cap === Number.POSITIVE_INFINITY) {
      throw new InvalidArgumentError('options.maxPooledBytes', 'a finite number of bytes ≥ 0', describeValue(cap));
    }
    this.maxPooledBytes = cap;
    this.recorder = recorderFor(gpu);
    gpu.device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  /** Throws a typed error once the device is lost (driver reset, `destroy()`, …). */
  private checkDevice(): void {
    if (this.lostReason !== null) {
      throw new PelkError('BACKEND_UNAVAILABLE', `the WebGPU device was lost (${this.lostReason}); create a new backend`);
    }
  }

  /**
   * Fused WGSL kernels for the GRU, LSTM, Elman and `ar` programs (see `fused/`): a
   * linearisation is one dispatch, a sweep one, a sequential rollout one per slice of steps.
   * `undefined` (op by op) where a kernel would exceed the adapter's workgroup memory.
   */
  override readonly bindProgram = (program: CellProgram, context: BindContext): FusedCell | undefined => {
    this.checkDevice();
    return bindWebGpuProgram(
      { tf: this.tf, recorder: this.recorder, tensor: (x, field) => this.t(x, field), read: (x, owned) => this.queueRead(x, owned), sync: () => this.sync() },
      program,
      context,
    );
  };

  /**
   * Compute dispatches (tfjs's and pelk's) and queue submissions since this backend was created:
   * the figures behind "a quasi-DEER iteration is a few dispatches and one submission".
   */
  deviceCounters(): GpuCounters {
    return this.recorder.counters();
  }

  /** Small reads go back by buffer copies into one staging buffer: no concatenation dispatch. */
  protected override readTogether(tensors: readonly tfc.Tensor[]): Promise<Float32Array[]> {
    this.checkDevice();
    return this.recorder.readTogether(tensors as unknown as Tensor[]);
  }

  /** One dispatch: the update, its counts and its step (see `fused/correction.ts`). */
  override applyCorrection(current: Tensor, correction: Tensor, bound: number): Corrected {
    this.checkDevice();
    const cur = this.t(current, 'current');
    const cor = this.t(correction, 'correction');
    if (cur.size !== cor.size) throw new ShapeError('applyCorrection', `correction of ${cur.size} elements`, `${cor.size} elements`);
    if (cur.size === 0) return super.applyCorrection(current, correction, bound);
    const value = emptyGpuTensor(this.tf, cur.shape);
    // Zeroed by its upload, which the command stream orders before the dispatch.
    const stats = this.tf.tensor(new Float32Array(3), [3], 'float32');
    this.recorder.dispatch(correctionKernel(this.recorder), correctionUniforms(cur.size, bound), [cur, cor, value, stats].map((t) => t as unknown as Tensor), correctionWorkgroups(cur.size));
    // Kept: a caller's tidy must not free it before the (asynchronous) read.
    const words = this.queueRead(this.tf.keep(stats), true).then((w) => new Uint32Array(w.buffer, w.byteOffset, 3));
    return {
      value: this.p(value),
      nonFinite: words.then((w) => w[0]),
      clipped: words.then((w) => w[1]),
      step: words.then((w) => new Float32Array(w.buffer, w.byteOffset, 3)[2]),
    };
  }

  override fromArray(data: ArrayLike<number>, shape: readonly number[], dtype: 'float32' | 'float64'): Tensor {
    this.checkDevice();
    return super.fromArray(data, shape, dtype);
  }

  override linearScanDiagonal(a: Tensor, b: Tensor, init: Tensor, options: ScanOptions = {}): Tensor {
    const [ta, tb, ti] = this.checkScan('linearScanDiagonal', a, b, init, false);
    return this.p(this.tf.tidy(() => diagonalScan(this.gpu, ta, tb, this.as2d(ti, tb), options.reverse === true, this.kernelOptions())));
  }

  override linearScanDense(A: Tensor, b: Tensor, init: Tensor, options: ScanOptions = {}): Tensor {
    const [tA, tb, ti] = this.checkScan('linearScanDense', A, b, init, true);
    return this.p(this.tf.tidy(() => denseScan(this.gpu, tA, tb, this.as2d(ti, tb), options.reverse === true, this.kernelOptions())));
  }

  override kalmanDiagonal(model: KalmanModel, options: KalmanOptions = {}): KalmanMoments {
    const m = this.checkKalman(model, false);
    const out = this.tf.tidy(() => {
      const { mean, variance } = kalmanDiagonal(this.gpu, m.F, m.bias, m.y, this.as2d(m.init, m.bias), m.q, m.r, options.smooth === true, this.kernelOptions());
      return { mean, variance };
    });
    return { mean: this.p(out.mean), covariance: this.p(out.variance) };
  }

  /** The dense Kalman filter / smoother in WGSL: 3 dispatches (6 with the smoother), any T (see `kernels/dense-kalman.ts`). */
  override kalmanDense(model: KalmanModel, options: KalmanOptions = {}): KalmanMoments {
    this.checkDevice();
    const m = this.checkKalman(model, true);
    const [B, T, D] = m.bias.shape as [number, number, number];
    if (B * T * D === 0) return super.kalmanDense(model, options);
    checkKalmanDenseLimits(this.recorder.limits, B, T, D);
    const init = this.as2d(m.init, m.bias);
    try {
      const out = kalmanDenseGpu(this.recorder, (shape) => emptyGpuTensor(this.tf, shape), { F: m.F, bias: m.bias, y: m.y, init, q: m.q, r: m.r }, options.smooth === true);
      return { mean: this.p(out.mean), covariance: this.p(out.covariance) };
    } finally {
      if (init !== m.init) init.dispose();
    }
  }
  /**
   * Memory layout of the diagonal and Kalman scans, switchable at any time (benchmarks compare
   * them): `'staged'` coalesces reads and writes through workgroup memory, `'direct'` walks global
   * memory per invocation, `'auto'` (default) stages for D < 32 on a GPU and goes direct otherwise
   * and on CPU adapters such as SwiftShader, where barriers cost more than coalescing saves.
   *
   * @example
   * ```ts
   * backend.scanLayout = 'direct'; // every later scan walks global memory directly
   * ```
   */
  get scanLayout(): ScanLayout {
    return this.layout;
  }

  set scanLayout(layout: ScanLayout) {
    if (layout !== 'auto' && layout !== 'staged' && layout !== 'direct') {
      throw new InvalidArgumentError('scanLayout', "'auto', 'staged' or 'direct'", describeValue(layout));
    }
    this.layout = layout;
  }

  private kernelOptions(): KernelOptions {
    return { ...(this.chunk === undefined ? {} : { chunk: this.chunk }), scanLayout: this.scanLayout };
  }

  /** `init` as `[B, D]` (the kernels take exactly that shape). */
  private as2d(init: tfc.Tensor, b: tfc.Tensor): tfc.Tensor {
    return init.rank === 2 ? init : this.tf.reshape(init, [b.shape[0] as number, b.shape[2] as number]);
  }

  /**
   * Releases what an evaluation left in tfjs's buffer pool; core calls it when every evaluation
   * ends (returned, failed or aborted). First it submits whatever tfjs has recorded but not yet
   * submitted (tfjs frees the buffers of tensors disposed while their commands were pending only
   * at the next submission); then it destroys the pool's free buffers beyond `maxPooledBytes`
   * (default 0: all of them). tfjs itself never shrinks its pool: without this, every size of
   * buffer an evaluation ever used stays allocated until the device is destroyed. Buffers of live
   * tensors are untouched; a destroyed buffer still used by submitted commands is freed by the
   * WebGPU implementation once they complete.
   */
  trim(): void {
    this.submitPending();
    this.releasePooledBuffers(this.maxPooledBytes);
  }

  /** tfjs's buffer pool, if it has the shape this backend knows (tfjs-backend-webgpu 4.x). */
  private pool(): TfBufferPool | undefined {
    const pool = (this.gpu as unknown as { bufferManager?: Partial<TfBufferPool> }).bufferManager;
    if (!pool || !(pool.freeBuffers instanceof Map) || typeof pool.numFreeBuffers !== 'number' || typeof pool.numBytesAllocated !== 'number') {
      return undefined;
    }
    return pool as TfBufferPool;
  }

  /** What tfjs's buffer pool holds now (zeros when its layout is unknown). */
  poolUsage(): GpuPoolUsage {
    const pool = this.pool();
    if (!pool) return { usedBuffers: 0, usedBytes: 0, freeBuffers: 0, allocatedBytes: 0 };
    return { usedBuffers: pool.numUsedBuffers, usedBytes: pool.numBytesUsed, freeBuffers: pool.numFreeBuffers, allocatedBytes: pool.numBytesAllocated };
  }

  /**
   * Destroys free pooled buffers until at most `keepBytes` of them remain (the most recently freed
   * of each size are kept first). Returns the number of bytes released.
   */
  releasePooledBuffers(keepBytes = 0): number {
    const pool = this.pool();
    if (!pool) return 0;
    let kept = 0;
    let released = 0;
    let count = 0;
    for (const buffers of pool.freeBuffers.values()) {
      // Keep the map's keys: tfjs's releaseBuffer ignores every release once the map is empty.
      const keep: GPUBuffer[] = [];
      for (let k = buffers.length - 1; k >= 0; k--) {
        const buffer = buffers[k];
        if (kept + buffer.size <= keepBytes) {
          keep.unshift(buffer);
          kept += buffer.size;
        } else {
          buffer.destroy();
          released += buffer.size;
        }
      }
      buffers.length = 0;
      buffers.push(...keep);
      count += keep.length;
    }
    pool.numFreeBuffers = count;
    pool.numBytesAllocated -= released;
    return released;
  }

  /**
   * Submits whatever is recorded and resolves once the device has finished all submitted work
   * (benchmarks time GPU work between two of these).
   */
  async sync(): Promise<void> {
    this.checkDevice();
    this.submitPending();
    await this.gpu.device.queue.onSubmittedWorkDone();
  }

  /** Submits what tfjs (and pelk's kernels) recorded but did not submit yet. */
  private submitPending(): void {
    const gpu = this.gpu as unknown as { commandEncoder: unknown; endComputePassEncoder(): void; submitQueue(): void };
    if (gpu.commandEncoder) {
      // tfjs keeps a compute pass open between dispatches: close it before submitting.
      gpu.endComputePassEncoder();
      gpu.submitQueue();
    }
  }

  /** Removes tfjs's webgpu backend and destroys the device (Dawn keeps Node alive while one lives). */
  async destroy(): Promise<void> {
    const device = this.gpu.device;
    await device.queue.onSubmittedWorkDone();
    // Removing the backend drops tfjs's factory too: register it again, so that a later
    // createWebGpuBackend in this process starts a fresh device.
    const entry = this.tf.engine().registryFactory.webgpu;
    if (entry) {
      this.tf.engine().removeBackend('webgpu');
      this.tf.registerBackend('webgpu', entry.factory, entry.priority);
    }
    device.destroy();
  }
}
