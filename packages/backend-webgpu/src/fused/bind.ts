/**
 * `WebGpuBackend.bindProgram`: the fused WGSL kernels of the GRU, LSTM, Elman and `ar` programs behind
 * core's {@link FusedCell} contract. Binding projects every input once (one tfjs GEMM per
 * evaluation; the `ar` cell projects its own emitted value step by step, in the kernel); a
 * linearisation is then one dispatch per window (core advances device backends in one window), a
 * sweep one dispatch, and a rollout one dispatch per slice of at most
 * {@link ROLLOUT_DISPATCH_STEPS} steps. The residual comes back through the backend's coalesced
 * read-back, with whatever else the iteration reads.
 */
import {
  type ArProgram,
  type BindContext,
  type CellProgram,
  type FusedCell,
  type FusedLinearization,
  type FusedLinearizeOptions,
  InvalidArgumentError,
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
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { uninitialisedTensor } from '../kernels/program.js';
import { type CommandRecorder, checkBindingLimit } from './recorder.js';
import { arKernelWgsl, arLayout } from './ar-wgsl.js';
import { FUSED_WORKGROUP, type RnnKernelMode, rnnBindings, rnnKernelWgsl, rnnLayout } from './rnn-wgsl.js';

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
  return uninitialisedTensor(tf.engine().findBackend('webgpu') as unknown as WebGPUBackend, shape);
}

/** Refuses a tensor larger than one storage binding of this adapter, naming the limit. */
function checkBinding(host: FusedHost, field: string, shape: readonly number[]): void {
  checkBindingLimit(host.recorder.limits, field, shape.reduce((n, d) => n * d, 1), `[${shape.join(', ')}]`);
}

/** What distinguishes the kernels of one program: sizes, packed weights, drive and WGSL. */
interface KernelFamily {
  /** `'gru'`, `'lstm'`, `'elman'` or `'ar'` (errors name it). */
  readonly kind: string;
  /** State size `D`. */
  readonly D: number;
  /** Width of a drive row. */
  readonly G: number;
  /** Steps per workgroup in the parallel kernels; invocations of a rollout workgroup. */
  readonly slots: number;
  readonly lanes: number;
  /** Everything baked into the WGSL (pipeline cache key). */
  readonly key: string;
  /** Every weight the kernels read, packed in one float32 buffer. */
  readonly packed: Float32Array;
  /** The drive rows `[B, T, G]` from the inputs (a tfjs program). */
  drive(tf: typeof tfc, inputs: tfc.Tensor | null, B: number, T: number): tfc.Tensor;
  wgsl(mode: RnnKernelMode): string;
}

/** The kernel family of a GRU, LSTM or Elman program. */
function rnnFamily(program: RnnProgram): KernelFamily & { workgroupBytes: number } {
  const layout = rnnLayout(program);
  const { G } = layout;
  const I = program.inputSize;
  return {
    kind: program.kind,
    D: layout.D,
    G,
    slots: layout.slots,
    lanes: layout.lanes,
    workgroupBytes: layout.workgroupBytes,
    key: rnnKey(program),
    packed: packRnn(program),
    drive(tf, inputs, B, T) {
      return tf.tidy(() => {
        const bias = tf.tensor(Float32Array.from(driveBias(program)), [G], 'float32');
        if (!inputs || I === 0) return tf.tile(tf.reshape(bias, [1, 1, G]), [B, T, 1]);
        const wT = tf.tensor(Float32Array.from(transpose(storedAs('float32', program.weightIh), G, I)), [I, G], 'float32');
        return tf.reshape(tf.add(tf.matMul(tf.reshape(inputs, [B * T, I]), wT), bias), [B, T, G]);
      });
    },
    wgsl: (mode) => rnnKernelWgsl(program, layout, mode),
  };
}

/** The kernel family of an `ar` program: the drivers are the drive rows; the projection runs per step. */
function arFamily(program: ArProgram): KernelFamily & { workgroupBytes: number } {
  const inner = packRnn(program.inner);
  const H = program.inner.hiddenSize;
  const auxLength = inner.length - 2 * rnnLayout(program.inner).G * H;
  const layout = arLayout(program, auxLength);
  const I = program.inputSize;
  const o = layout.offsets;
  const packed = new Float32Array(o.total);
  packed.set(inner);
  packed.set(storedAs('float32', program.inner.weightIh), o.wih);
  packed.set(storedAs('float32', driveBias(program.inner)), o.bias);
  packed.set(storedAs('float32', program.readout.weight), o.readW);
  packed.set(storedAs('float32', program.readout.bias), o.readB);
  return {
    kind: 'ar',
    D: layout.D,
    G: I,
    slots: layout.inner.slots,
    lanes: layout.inner.lanes,
    workgroupBytes: layout.workgroupBytes,
    key: `ar-${I}-${program.readout.skip}-${rnnKey(program.inner)}`,
    packed,
    drive: (tf, inputs, B, T) => (inputs ? tf.clone(inputs) : tf.zeros([B, T, I], 'float32')),
    wgsl: (mode) => arKernelWgsl(program, layout, mode),
  };
}

/** What an RNN program bakes into its kernels. */
function rnnKey(p: RnnProgram): string {
  return `${p.kind}-${p.hiddenSize}-${p.resetAfter !== false}-${p.activation}-${p.recurrentActivation ?? 'sigmoid'}`;
}

/** `W_hhᵀ`, `W_hh` and the GRU's auxiliary words (see `rnnBindings`), as float32. */
function packRnn(program: RnnProgram): Float32Array {
  const { H, G } = rnnLayout(program);
  const W = storedAs('float32', program.weightHh);
  const aux = program.kind === 'gru' ? gruAux(program, W) : new Float64Array(0);
  const packed = new Float32Array(2 * G * H + aux.length);
  packed.set(transpose(W, G, H));
  packed.set(W, G * H);
  packed.set(aux, 2 * G * H);
  return packed;
}

/**
 * Binds a program to the WebGPU backend, or returns `undefined` when its kernels would need more
 * workgroup memory than the adapter has (a very large hidden size): core then evaluates the cell
 * op by op.
 */
export function bindWebGpuProgram(host: FusedHost, program: CellProgram, context: BindContext): FusedCell | undefined {
  checkProgram(program);
  checkBindContext(context, program.inputSize, program.kind);
  if (context.dtype !== 'float32') throw new InvalidArgumentError('context.dtype', "'float32' (the WebGPU backend's only dtype)", describeValue(context.dtype));
  const family = program.kind === 'ar' ? arFamily(program) : rnnFamily(program);
  if (family.workgroupBytes > host.recorder.limits.maxComputeWorkgroupStorageSize) return undefined;
  const { batch: B, steps: T } = context;
  const inputs = context.inputs ? host.tensor(context.inputs, 'context.inputs') : null;
  checkBinding(host, 'drive', [B, T, family.G]);
  checkBinding(host, 'states', [B, T, family.D]);
  return new WebGpuFusedCell(host, family, inputs, B, T);
}

/** A bound program: its weights and drive rows on the device. */
class WebGpuFusedCell implements FusedCell {
  /** Every weight in one buffer (see the family's `packed`). */
  private readonly weights: tfc.Tensor;
  private readonly drive: tfc.Tensor;
  /** The residual words of linearisations not yet finished (freed with the cell otherwise). */
  private readonly pendingStats = new Set<tfc.Tensor>();
  private disposed = false;

  constructor(
    private readonly host: FusedHost,
    private readonly family: KernelFamily,
    inputs: tfc.Tensor | null,
    private readonly B: number,
    private readonly T: number,
  ) {
    const { tf } = host;
    const weights = tf.tensor(family.packed, [family.packed.length], 'float32');
    this.weights = weights;
    try {
      this.drive = family.drive(tf, inputs, B, T);
    } catch (err) {
      weights.dispose();
      throw err;
    }
  }

  private alive(): void {
    if (this.disposed) throw new InvalidArgumentError(`${this.family.kind} fused cell`, 'a cell that is still bound', 'a disposed one');
  }


  private run(mode: RnnKernelMode, tensors: tfc.Tensor[], t0: number, t1: number, workgroups: number): void {
    const { family } = this;
    const bindings = rnnBindings(mode).names.map((n) => (n === 'OUT' || n === 'JAC' || n === 'STATS' ? ('write' as const) : ('read' as const)));
    const size = mode === 'rollout' ? family.lanes : FUSED_WORKGROUP;
    const kernel = this.host.recorder.kernel(`pelk-fused-${family.key}-${mode}`, family.wgsl(mode), ['uniform', ...bindings], size);
    this.host.recorder.dispatch(kernel, Uint32Array.of(this.B, this.T, t0, t1), [this.weights, this.drive, ...tensors].map(asPelk), workgroups);
  }

  private empty(shape: number[]): tfc.Tensor {
    return emptyGpuTensor(this.host.tf, shape);
  }

  rollout(init: Tensor): Rollout {
    this.alive();
    const { B, T } = this;
    checkShape(init, 'init', [B, this.family.D]);
    const s0 = this.host.tensor(init, 'init');
    const out = this.empty([B, T, this.family.D]);
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
    const { D } = this.family;
    const dense = checkLinearize(states, init, options, [B, T, D]);
    const s = host.tensor(states, 'states');
    const s0 = host.tensor(init, 'init');
    const jacShape = dense ? [B, T, D, D] : [B, T, D];
    checkBinding(host, 'jacobian', jacShape);
    const jacobian = this.empty(jacShape);
    const defect = this.empty([B, T, D]);
    // One word, zeroed by its upload (ordered before the dispatches in the command stream).
    // Kept: a caller's tidy must not free it before its read-back (the cell frees it).
    const stats = host.tf.keep(host.tf.tensor(new Float32Array(1), [1], 'float32'));
    this.pendingStats.add(stats);
    const mode = dense ? 'dense' : 'diagonal';
    const slots = this.family.slots;
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
        const sumSquares = options.sumSquares ? host.read(host.tf.keep(host.tf.tidy(() => host.tf.sum(host.tf.square(defect)))), true) : undefined;
        const freed = Promise.allSettled([residual, sumSquares]).then(() => host.tf.dispose(stats));
        void freed;
        return { residual, sumSquares: sumSquares ? sumSquares.then((w) => w[0]) : Promise.resolve(Number.NaN) };
      },
    };
  }

  apply(prev: Tensor): Tensor {
    this.alive();
    const { B, T } = this;
    checkShape(prev, 'prev', [B, T, this.family.D]);
    const p = this.host.tensor(prev, 'prev');
    const out = this.empty([B, T, this.family.D]);
    this.run('apply', [p, out], 0, T, Math.ceil((B * T) / this.family.slots));
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
