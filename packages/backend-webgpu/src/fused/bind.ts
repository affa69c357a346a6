/**
 * `WebGpuBackend.bindProgram`: the fused WGSL kernels of the GRU, LSTM and Elman programs behind
 * core's {@link FusedCell} contract. Binding projects every input once (one tfjs GEMM per
 * evaluation); a linearisation is then one dispatch per window (core advances device backends in
 * one window), a sweep one dispatch, and a rollout one dispatch per slice of at most
 * {@link ROLLOUT_DISPATCH_STEPS} steps. The residual comes back through the backend's coalesced
 * read-back, with whatever else the iteration reads.
 */
import {
  type BindContext,
  type CellProgram,
  type FusedCell,
  type FusedLinearization,
  type FusedLinearizeOptions,
  InvalidArgumentError,
  ResourceLimitError,
  type RnnProgram,
  type Rollout,
  type Tensor,
  checkBindContext,
  checkLinearize,
  checkProgram,
  checkShape,
  describeValue,
  driveBias,
  storedAs,
  transpose,
  windowEnd,
} from '@pelk/core';
import type * as tfc from '@tensorflow/tfjs-core';
import type { CommandRecorder } from './recorder.js';
import { FUSED_WORKGROUP, type RnnKernelMode, type RnnLayout, rnnBindings, rnnKernelWgsl, rnnLayout } from './rnn-wgsl.js';

/** Steps one rollout dispatch walks at most (bounds the time of a single dispatch on slow GPUs). */
export const ROLLOUT_DISPATCH_STEPS = 4096;

/** What the fused kernels need from the backend that binds them. */
export interface FusedHost {
  readonly tf: typeof tfc;
  readonly recorder: CommandRecorder;
  /** The live tfjs tensor behind a pelk tensor of this backend (a typed error otherwise). */
  tensor(x: Tensor, field: string): tfc.Tensor;
  /** Queues a read of a small tensor into the backend's coalesced read-back; `owned`: free it once read. */
  read(x: tfc.Tensor, owned: boolean): Promise<Float32Array>;
  /** Submits what is recorded and resolves when the device has done it. */
  sync(): Promise<void>;
}

const asPelk = (t: tfc.Tensor) => t as unknown as Tensor;

/** An uninitialised float32 tensor on tfjs's webgpu backend (for outputs a kernel writes in full). */
export function emptyGpuTensor(tf: typeof tfc, shape: readonly number[]): tfc.Tensor {
  const gpu = tf.engine().findBackend('webgpu') as unknown as tfc.KernelBackend & { makeTensorInfo(shape: number[], dtype: 'float32'): tfc.TensorInfo };
  return tf.engine().makeTensorFromTensorInfo(gpu.makeTensorInfo([...shape], 'float32'), gpu) as tfc.Tensor;
}

/** Refuses a tensor larger than one storage binding of this adapter, naming the limit. */
function checkBinding(host: FusedHost, field: string, shape: readonly number[]): void {
  const limit = host.recorder.limits.maxStorageBufferBindingSize;
  const bytes = shape.reduce((n, d) => n * d, 4);
  if (bytes > limit) {
    throw new ResourceLimitError(field, `at most ${limit} bytes (this adapter's maxStorageBufferBindingSize)`, `[${shape.join(', ')}]: ${bytes} bytes`);
  }
}

/**
 * Binds a program to the WebGPU backend, or returns `undefined` when there is no WGSL kernel for it
 * (the `ar` program, or a hidden size whose workgroup memory exceeds the adapter's limit): core then
 * evaluates the cell op by op.
 */
export function bindWebGpuProgram(host: FusedHost, program: CellProgram, context: BindContext): FusedCell | undefined {
  checkProgram(program);
  checkBindContext(context, program.inputSize, program.kind);
  if (context.dtype !== 'float32') throw new InvalidArgumentError('context.dtype', "'float32' (the WebGPU backend's only dtype)", describeValue(context.dtype));
  if (program.kind === 'ar') return undefined;
  const layout = rnnLayout(program);
  if (layout.workgroupBytes > host.recorder.limits.maxComputeWorkgroupStorageSize) return undefined;
  const { batch: B, steps: T } = context;
  const { G, D } = layout;
  const inputs = context.inputs ? host.tensor(context.inputs, 'context.inputs') : null;
  checkBinding(host, 'drive', [B, T, G]);
  checkBinding(host, 'states', [B, T, D]);
  return new WebGpuFusedRnn(host, program, layout, inputs, B, T);
}

/** A bound GRU, LSTM or Elman program: its weights and input projection on the device. */
class WebGpuFusedRnn implements FusedCell {
  /** `W_hhᵀ`, `W_hh` and the GRU's auxiliary words in one buffer (see `rnnBindings`). */
  private readonly weights: tfc.Tensor;
  private readonly drive: tfc.Tensor;
  /** The residual words of linearisations not yet finished (freed with the cell otherwise). */
  private readonly pendingStats = new Set<tfc.Tensor>();
  private disposed = false;

  constructor(
    private readonly host: FusedHost,
    private readonly program: RnnProgram,
    private readonly layout: RnnLayout,
    inputs: tfc.Tensor | null,
    private readonly B: number,
    private readonly T: number,
  ) {
    const { tf } = host;
    const { H, G } = layout;
    const I = program.inputSize;
    const W = storedAs('float32', program.weightHh);
    const f32 = (a: Float64Array, shape: number[]) => tf.tensor(Float32Array.from(a), shape, 'float32');
    const aux = program.kind === 'gru' ? gruAux(program, W) : new Float64Array(0);
    const packed = new Float32Array(2 * G * H + aux.length);
    packed.set(transpose(W, G, H));
    packed.set(W, G * H);
    packed.set(aux, 2 * G * H);
    const weights = tf.tensor(packed, [packed.length], 'float32');
    this.weights = weights;
    try {
      this.drive = tf.tidy(() => {
        const bias = f32(driveBias(program), [G]);
        if (!inputs || I === 0) return tf.tile(tf.reshape(bias, [1, 1, G]), [B, T, 1]);
        const wT = f32(transpose(storedAs('float32', program.weightIh), G, I), [I, G]);
        return tf.reshape(tf.add(tf.matMul(tf.reshape(inputs, [B * T, I]), wT), bias), [B, T, G]);
      });
    } catch (err) {
      weights.dispose();
      throw err;
    }
  }

  private alive(): void {
    if (this.disposed) throw new InvalidArgumentError(`${this.program.kind} fused cell`, 'a cell that is still bound', 'a disposed one');
  }


  private run(mode: RnnKernelMode, tensors: tfc.Tensor[], t0: number, t1: number, workgroups: number): void {
    const { program, layout } = this;
    const key = `pelk-fused-${program.kind}-${mode}-${program.hiddenSize}-${layout.resetBefore}-${program.activation}-${program.recurrentActivation ?? 'sigmoid'}`;
    const bindings = rnnBindings(mode).names.map((n) => (n === 'OUT' || n === 'JAC' || n === 'STATS' ? ('write' as const) : ('read' as const)));
    const kernel = this.host.recorder.kernel(key, rnnKernelWgsl(program, layout, mode), ['uniform', ...bindings], mode === 'rollout' ? layout.lanes : FUSED_WORKGROUP);
    this.host.recorder.dispatch(kernel, Uint32Array.of(this.B, this.T, t0, t1), [this.weights, this.drive, ...tensors].map(asPelk), workgroups);
  }

  private empty(shape: number[]): tfc.Tensor {
    return emptyGpuTensor(this.host.tf, shape);
  }

  rollout(init: Tensor): Rollout {
    this.alive();
    const { B, T } = this;
    checkShape(init, 'init', [B, this.layout.D]);
    const s0 = this.host.tensor(init, 'init');
    const out = this.empty([B, T, this.layout.D]);
    let done = 0;
    return {
      states: asPelk(out),
      advance: (count) => {
        this.alive();
        const end = windowEnd(done, count, T);
        for (let t0 = done; t0 < end; t0 += ROLLOUT_DISPATCH_STEPS) this.run('rollout', [s0, out], t0, Math.min(end, t0 + ROLLOUT_DISPATCH_STEPS), B);
        done = end;
        return done;
      },
      settle: () => this.host.sync(),
    };
  }

  linearize(states: Tensor, init: Tensor, options: FusedLinearizeOptions): FusedLinearization {
    this.alive();
    const { B, T, host } = this;
    const { D } = this.layout;
    const dense = checkLinearize(states, init, options, [B, T, D]);
    const s = host.tensor(states, 'states');
    const s0 = host.tensor(init, 'init');
    const jacShape = dense ? [B, T, D, D] : [B, T, D];
    checkBinding(host, 'jacobian', jacShape);
    const jacobian = this.empty(jacShape);
    const defect = this.empty([B, T, D]);
    // One word, zeroed by its upload (ordered before the dispatches in the command stream).
    const stats = host.tf.tensor(new Float32Array(1), [1], 'float32');
    this.pendingStats.add(stats);
    const mode = dense ? 'dense' : 'diagonal';
    const slots = this.layout.slots;
    let done = 0;
    return {
      jacobian: asPelk(jacobian),
      defect: asPelk(defect),
      advance: (count) => {
        this.alive();
        const end = windowEnd(done, count, T);
        if (end > done) this.run(mode, [s, s0, defect, jacobian, stats], done, end, Math.ceil((B * (end - done)) / slots));
        done = end;
        return done;
      },
      finish: () => {
        if (!(done >= T)) throw new InvalidArgumentError('linearisation', `all ${T} steps done before finish()`, `${done} steps done`);
        this.pendingStats.delete(stats);
        const residual = host.read(stats, false).then((w) => w[0]);
        // The merit's sum of squares (ELK only) is a tfjs reduction of the defects.
        const sumSquares = options.sumSquares ? host.read(host.tf.tidy(() => host.tf.sum(host.tf.square(defect))), true) : undefined;
        const freed = Promise.allSettled([residual, sumSquares]).then(() => host.tf.dispose(stats));
        void freed;
        return { residual, sumSquares: sumSquares ? sumSquares.then((w) => w[0]) : Promise.resolve(Number.NaN) };
      },
    };
  }

  apply(prev: Tensor): Tensor {
    this.alive();
    const { B, T } = this;
    checkShape(prev, 'prev', [B, T, this.layout.D]);
    const p = this.host.tensor(prev, 'prev');
    const out = this.empty([B, T, this.layout.D]);
    this.run('apply', [p, out], 0, T, Math.ceil((B * T) / this.layout.slots));
    return asPelk(out);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.host.tf.dispose([this.weights, this.drive, ...this.pendingStats]);
    this.pendingStats.clear();
  }
}

/**
 * The GRU's auxiliary weights: `b_hn` (it stays inside `r ⊙ (W_hn h + b_hn)` with the reset gate
 * after the product); before it, `Eᵀ` with `E[i,k] = W_hn[i,k]·W_hr[k,i]` behind `H` unused words
 * (the diagonal of `W_hn diag(q) W_hr` is `E q`).
 */
function gruAux(p: RnnProgram, W: Float64Array): Float64Array {
  const H = p.hiddenSize;
  if (p.resetAfter !== false) return storedAs('float32', p.biasHh.slice(2 * H));
  const out = new Float64Array(H + H * H);
  for (let i = 0; i < H; i++) for (let k = 0; k < H; k++) out[H + k * H + i] = W[(2 * H + i) * H + k] * W[k * H + i];
  return out;
}
