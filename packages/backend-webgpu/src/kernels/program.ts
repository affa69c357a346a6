/**
 * Shared plumbing for pelk's WGSL kernels: a `WebGPUProgram` built from user code plus a list of
 * scalar uniforms, run through `WebGPUBackend.runWebGPUProgram`, with its output wrapped as an
 * ordinary tfjs tensor (so callers dispose intermediates like any other tensor).
 *
 * tfjs-backend-webgpu compiles `getUserCode()` behind its own header (uniform struct with the
 * shapes of every input and the output, `result` as the read-write output binding, the inputs as
 * read-only bindings named by `variableNames`) and caches the pipeline under `shaderKey` extended
 * with the input/output ranks and dtypes. Everything a kernel bakes into its source as a constant
 * must therefore appear in the key we pass.
 */
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import { engine, type Tensor, type TensorInfo } from '@tensorflow/tfjs-core';

/** One scalar uniform: its WGSL field name, type and value. */
export interface UniformField {
  readonly name: string;
  readonly type: 'i32' | 'f32';
  readonly value: number;
}

/** What a pelk kernel program needs; everything else in `WebGPUProgram` is derived. */
export interface KernelProgramSpec {
  /** Cache key: must cover every constant baked into `code`. */
  readonly key: string;
  readonly variableNames: readonly string[];
  readonly outputShape: readonly number[];
  /** Flat workgroup size (x only). */
  readonly workgroupSize: number;
  /** Number of workgroups to launch (tfjs folds it into 2-D/3-D when it exceeds the per-dimension limit). */
  readonly workgroups: number;
  /** Uniform fields in declaration order; the values are sent with each dispatch. */
  readonly uniforms: readonly UniformField[];
  /** WGSL user code: must define `fn main(index : i32)` (tfjs's flat-dispatch entry calls it). */
  readonly code: string;
}

/**
 * A tfjs-backend-webgpu program with a flat dispatch layout: tfjs's `_start` then calls
 * `main(getGlobalIndex())`, where the global index stays linear even when the dispatch is folded
 * into two or three dimensions for large launches.
 */
class KernelProgram implements WebGPUProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  shaderKey: string;
  readonly dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];
  readonly uniforms: string;
  private readonly code: string;

  constructor(spec: KernelProgramSpec) {
    this.variableNames = [...spec.variableNames];
    this.outputShape = [...spec.outputShape];
    this.shaderKey = spec.key;
    this.dispatchLayout = { x: this.outputShape.map((_, i) => i) };
    this.dispatch = [Math.max(1, spec.workgroups), 1, 1];
    this.workgroupSize = [spec.workgroupSize, 1, 1];
    this.uniforms = spec.uniforms.map((u) => `${u.name} : ${u.type},`).join(' ');
    this.code = spec.code;
  }

  getUserCode(): string {
    return this.code;
  }
}

/** Bytes of a float32 tensor with this shape. */
function bytesOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1) * 4;
}

/**
 * Throws when a binding would exceed the device's `maxStorageBufferBindingSize`.
 * Problems that large would have to be split along B (independent) or T (chained through the
 * chunk carries) by the caller; that splitting is not implemented.
 */
export function checkBindingSize(backend: WebGPUBackend, what: string, shape: readonly number[]): void {
  const limit = backend.device.limits.maxStorageBufferBindingSize;
  const bytes = bytesOf(shape);
  if (bytes > limit) {
    throw new RangeError(
      `pelk webgpu: ${what} [${shape.join(', ')}] needs ${bytes} bytes, more than this device's maxStorageBufferBindingSize (${limit}); split the batch or the sequence`,
    );
  }
}

/**
 * Runs a kernel program and returns its float32 output as a new tfjs tensor owned by `backend`.
 * Inputs must be float32 tensors living on `backend`.
 */
export function runKernel(backend: WebGPUBackend, spec: KernelProgramSpec, inputs: readonly TensorInfo[]): Tensor {
  inputs.forEach((t, i) => {
    checkBindingSize(backend, `input ${spec.variableNames[i]}`, t.shape);
  });
  checkBindingSize(backend, 'output', spec.outputShape);
  const program = new KernelProgram(spec);
  const uniformData = spec.uniforms.map((u) => ({
    type: u.type === 'i32' ? 'int32' : 'float32',
    data: [u.value],
  }));
  const info = backend.runWebGPUProgram(program, [...inputs], 'float32', uniformData);
  return engine().makeTensorFromTensorInfo(info, backend);
}

/** Disposes tensors (intermediates), ignoring nulls. */
export function disposeAll(...ts: (Tensor | null | undefined)[]): void {
  for (const t of ts) t?.dispose();
}

/** `ceil(a / b)` for positive integers. */
export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}

/** Validates a chunk length (an integer ≥ 2: each recursion level must shrink). */
export function checkChunk(chunk: number): number {
  if (!Number.isInteger(chunk) || chunk < 2) throw new RangeError(`pelk webgpu: chunk must be an integer ≥ 2, got ${chunk}`);
  return chunk;
}

/**
 * Asserts that a tensor is float32 with the expected shape (`-1` entries match anything) and
 * returns its shape.
 */
export function expectShape(name: string, t: TensorInfo, expected: readonly number[]): number[] {
  if (t.dtype !== 'float32') throw new TypeError(`pelk webgpu: ${name} must be float32, got ${t.dtype}`);
  const ok = t.shape.length === expected.length && expected.every((d, i) => d < 0 || d === t.shape[i]);
  if (!ok) throw new RangeError(`pelk webgpu: ${name} has shape [${t.shape.join(', ')}], expected [${expected.map((d) => (d < 0 ? '*' : d)).join(', ')}]`);
  return [...t.shape];
}

/** An uninitialised float32 tensor on `backend` (for outputs a kernel writes in full). */
export function uninitialisedTensor(backend: WebGPUBackend, shape: readonly number[]): Tensor {
  return engine().makeTensorFromTensorInfo(backend.makeTensorInfo([...shape], 'float32'), backend);
}

/** An empty float32 tensor (some dimension is 0) on `backend`. */
export function emptyTensor(backend: WebGPUBackend, shape: readonly number[]): Tensor {
  return engine().makeTensorFromTensorInfo(backend.makeTensorInfo([...shape], 'float32', new Float32Array(0)), backend);
}
