/// <reference types="@webgpu/types" />
/**
 * Recording pelk's own compute pipelines into tfjs-backend-webgpu's command stream. The fused cell
 * kernels read and write several tensors in one dispatch (Jacobians, defects, an atomic residual),
 * which tfjs's one-output programs cannot express; recording into tfjs's open compute pass keeps
 * every dispatch in order with tfjs's own and submitted with them, so an iteration stays one queue
 * submission.
 *
 * The tfjs internals used here (tfjs-backend-webgpu 4.x): `tensorMap` (a tensor's `GPUBuffer`),
 * `uploadToGPU`, `commandQueueOwnedIds` (buffers of tensors disposed while a command that uses them
 * is pending are released only after the submission), `ensureCommandEncoderReady`,
 * `computePassEncoder`, `dispatchCountInPass`, `makeUniforms`, `submitQueue`.
 */
import { PelkError, ResourceLimitError, type Tensor } from '@pelk/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { env } from '@tensorflow/tfjs-core';

/** How a kernel binds one buffer. */
export type BindingKind = 'uniform' | 'read' | 'write';

/** The parts of tfjs-backend-webgpu's backend (4.x) the recorder drives. */
interface TfGpuInternals {
  device: GPUDevice;
  tensorMap: { get(dataId: unknown): { resource?: unknown } | undefined };
  uploadToGPU(dataId: unknown): void;
  commandQueueOwnedIds: WeakSet<object>;
  commandEncoder: GPUCommandEncoder | null;
  computePassEncoder: GPUComputePassEncoder | null;
  dispatchCountInPass: number;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  makeUniforms(uniforms: { type: 'uint32' | 'int32' | 'float32'; data: number[] }[]): GPUBufferBinding;
  recordAndSubmit(...args: unknown[]): void;
  bufferManager: { acquireBuffer(size: number, usage: number): GPUBuffer; releaseBuffer(buffer: GPUBuffer): void };
}

/**
 * Refuses a float32 buffer of `floats` elements larger than one storage binding of the device
 * (`ResourceLimitError` naming the limit); `what` describes the buffer in the message.
 */
export function checkBindingLimit(limits: GPUSupportedLimits, field: string, floats: number, what: string): void {
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const bytes = 4 * floats;
  if (bytes > limit) throw new ResourceLimitError(field, `at most ${limit} bytes (this adapter's maxStorageBufferBindingSize)`, `${what}: ${bytes} bytes`);
}

const recorders = new WeakMap<WebGPUBackend, CommandRecorder>();

/**
 * The recorder of a tfjs WebGPU backend, created on first use: one per backend, so that every
 * caller (pelk's backend, the scan kernels) records into the same stream and every dispatch is
 * counted once.
 */
export function recorderFor(backend: WebGPUBackend): CommandRecorder {
  let recorder = recorders.get(backend);
  if (!recorder) {
    recorder = new CommandRecorder(backend);
    recorders.set(backend, recorder);
  }
  return recorder;
}

/** A compiled kernel: its pipeline and the kinds of its bindings (in binding order). */
export interface Kernel {
  readonly pipeline: GPUComputePipeline;
  readonly bindings: readonly BindingKind[];
  /** Invocations per workgroup. */
  readonly workgroupSize: number;
}

/** Dispatches and queue submissions counted since the backend was created. */
export interface GpuCounters {
  /** Compute dispatches: tfjs's programs and pelk's kernels. */
  readonly dispatches: number;
  /** Queue submissions of recorded commands (each read-back submits whatever is pending). */
  readonly submissions: number;
}

/**
 * Records pelk's kernels into tfjs's command stream, and counts every dispatch and submission
 * (tfjs's included) for the solvers' diagnostics. Get it with {@link recorderFor}: a second
 * recorder on one backend would count its dispatches twice.
 */
export class CommandRecorder {
  private readonly gpu: TfGpuInternals;
  private readonly kernels = new Map<string, Kernel>();
  private dispatchCount = 0;
  private submissionCount = 0;
  /** Kernels that failed to compile (reported asynchronously by the device), by key, with the reason. */
  private readonly failed = new Map<string, string>();
  /** Compilation checks not yet reported (a read-back waits for them). */
  private readonly compiling = new Set<Promise<void>>();
  /** Kernels dispatched since the last read-back: a read fails if one of them failed to compile. */
  private readonly sinceRead = new Set<string>();
  /**
   * The adapter emulates a GPU on the CPU (SwiftShader, or one that says it is a fallback
   * adapter): kernels that trade barriers for coalescing choose otherwise there.
   */
  cpuAdapter: boolean;

  constructor(backend: WebGPUBackend) {
    this.gpu = backend as unknown as TfGpuInternals;
    const gpu = this.gpu;
    this.cpuAdapter = (backend as unknown as { adapterInfo?: { architecture?: string } }).adapterInfo?.architecture === 'swiftshader';
    if (typeof gpu.recordAndSubmit !== 'function' || typeof gpu.submitQueue !== 'function' || typeof gpu.ensureCommandEncoderReady !== 'function') {
      throw new PelkError('BACKEND_UNAVAILABLE', 'this version of tfjs-backend-webgpu does not have the command recording pelk drives (4.x)');
    }
    // Count tfjs's own dispatches and submissions too: instance properties shadow the prototype's.
    const record = gpu.recordAndSubmit.bind(gpu);
    gpu.recordAndSubmit = (...args: unknown[]) => {
      this.dispatchCount++;
      record(...args);
    };
    const submit = gpu.submitQueue.bind(gpu);
    gpu.submitQueue = () => {
      this.submissionCount++;
      submit();
    };
  }

  /** Counts so far. */
  counters(): GpuCounters {
    return { dispatches: this.dispatchCount, submissions: this.submissionCount };
  }

  /** The device's limits. */
  get limits(): GPUSupportedLimits {
    return this.gpu.device.limits;
  }

  /** Compiles (once per key) a kernel whose WGSL declares `bindings` at `@group(0) @binding(0..)`. */
  kernel(key: string, code: string, bindings: readonly BindingKind[], workgroupSize: number): Kernel {
    let kernel = this.kernels.get(key);
    if (!kernel) {
      const device = this.gpu.device;
      // Compilation errors arrive asynchronously: kept, and thrown by the next dispatch or read.
      device.pushErrorScope('validation');
      const layout = device.createBindGroupLayout({
        entries: bindings.map((kind, binding) => ({
          binding,
          visibility: GPUShaderStage.COMPUTE,
          buffer: { type: kind === 'uniform' ? 'uniform' : kind === 'read' ? 'read-only-storage' : 'storage' },
        })),
      });
      const pipeline = device.createComputePipeline({
        label: key,
        layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module: device.createShaderModule({ code, label: key }), entryPoint: 'main' },
      });
      const checked = device.popErrorScope().then(
        (error) => {
          if (!error) return;
          this.failed.set(key, `pelk's WebGPU kernel ${key} did not compile: ${error.message}`);
          this.kernels.delete(key); // not cached: a later call compiles it again, or fails again
        },
        () => undefined,
      );
      this.compiling.add(checked);
      void checked.then(() => this.compiling.delete(checked));
      kernel = { pipeline, bindings, workgroupSize };
      this.kernels.set(key, kernel);
    }
    return kernel;
  }

  /** Throws the compilation failure of one of these kernels, if any. */
  private checkCompiled(keys: Iterable<string>): void {
    for (const key of keys) {
      const failure = this.failed.get(key);
      if (failure !== undefined) throw new PelkError('UNSUPPORTED', failure);
    }
  }

  /** The storage buffer of a float32 tfjs tensor on this device (uploaded first if it is still on the host). */
  private bufferOf(t: Tensor): GPUBuffer {
    const dataId = (t as unknown as { dataId: object }).dataId;
    this.gpu.uploadToGPU(dataId);
    const resource = this.gpu.tensorMap.get(dataId)?.resource;
    if (!(resource instanceof GPUBuffer)) throw new PelkError('UNSUPPORTED', 'a tensor bound to a pelk WebGPU kernel is not in a GPU buffer');
    this.gpu.commandQueueOwnedIds.add(dataId);
    return resource;
  }

  /**
   * Records one dispatch of `kernel` over `workgroups` workgroups (folded into two dimensions past
   * the per-dimension limit: kernels flatten `workgroup_id` with `num_workgroups`). `uniforms` are
   * 32-bit words (unsigned integers, or floats as their bit patterns) bound at binding 0; `tensors`
   * fill the other bindings in order.
   */
  dispatch(kernel: Kernel, uniforms: Uint32Array, tensors: readonly Tensor[], workgroups: number): void {
    const gpu = this.gpu;
    const key = kernel.pipeline.label;
    this.checkCompiled([key]);
    this.sinceRead.add(key);
    if (tensors.length + 1 !== kernel.bindings.length) {
      throw new Error(`pelk webgpu: kernel ${kernel.pipeline.label} binds ${kernel.bindings.length - 1} tensors, got ${tensors.length}`);
    }
    if (workgroups <= 0) return;
    const perDim = gpu.device.limits.maxComputeWorkgroupsPerDimension;
    const x = Math.min(workgroups, perDim);
    const y = Math.ceil(workgroups / x);
    const buffers = tensors.map((t) => this.bufferOf(t));
    // tfjs lays out uniform entries of at most 4 words on 16-byte boundaries: contiguous in groups of 4.
    const groups = Array.from({ length: Math.ceil(uniforms.length / 4) }, (_, g) => ({ type: 'uint32' as const, data: Array.from(uniforms.subarray(4 * g, 4 * g + 4)) }));
    const uniform = gpu.makeUniforms(groups);
    const bindGroup = gpu.device.createBindGroup({
      layout: kernel.pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: uniform }, ...buffers.map((buffer, i) => ({ binding: i + 1, resource: { buffer } }))],
    });
    gpu.ensureCommandEncoderReady();
    gpu.computePassEncoder ??= (gpu.commandEncoder as GPUCommandEncoder).beginComputePass({});
    gpu.computePassEncoder.setPipeline(kernel.pipeline);
    gpu.computePassEncoder.setBindGroup(0, bindGroup);
    gpu.computePassEncoder.dispatchWorkgroups(x, y, 1);
    this.dispatchCount++;
    gpu.dispatchCountInPass++;
    if ((env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE') as number) <= gpu.dispatchCountInPass) {
      gpu.endComputePassEncoder();
      gpu.submitQueue();
    }
  }

  /**
   * Reads small float32 tensors back with one submission and one mapping: each is copied into one
   * staging buffer behind whatever is pending (no concatenation dispatch). Returns their values
   * in order.
   */
  async readTogether(tensors: readonly Tensor[]): Promise<Float32Array[]> {
    const gpu = this.gpu;
    const buffers = tensors.map((t) => this.bufferOf(t));
    const sizes = tensors.map((t) => t.shape.reduce((n, d) => n * d, 1) * 4);
    const total = Math.max(4, sizes.reduce((a, b) => a + b, 0));
    const staging = gpu.device.createBuffer({ size: total, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    try {
      gpu.ensureCommandEncoderReady();
      gpu.endComputePassEncoder();
      let offset = 0;
      buffers.forEach((buffer, i) => {
        if (sizes[i] > 0) (gpu.commandEncoder as GPUCommandEncoder).copyBufferToBuffer(buffer, 0, staging, offset, sizes[i]);
        offset += sizes[i];
      });
      gpu.submitQueue();
      const dispatched = [...this.sinceRead];
      this.sinceRead.clear();
      try {
        await staging.mapAsync(GPUMapMode.READ);
      } catch (err) {
        // A mapping that fails is a device that went away (lost, destroyed) under the read.
        throw new PelkError('BACKEND_UNAVAILABLE', `a WebGPU read-back failed (${(err as Error)?.message ?? String(err)}); the device may be lost: create a new backend`, { cause: err });
      }
      await Promise.all(this.compiling);
      this.checkCompiled(dispatched);
      const all = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      let at = 0;
      return sizes.map((size) => {
        const part = all.slice(at, at + size / 4);
        at += size / 4;
        return part;
      });
    } finally {
      staging.destroy();
    }
  }
}
