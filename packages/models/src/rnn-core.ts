/**
 * The part of a GRU, LSTM or Elman cell that other cells can reuse: a "core" that uploads the
 * weights and returns a kernel which projects raw inputs (`W_ih x + b`) and runs one transition
 * from a projection, with the Jacobian with respect to the state and, on request, with respect
 * to the raw input. Each cell's own `bind` runs its core over the precomputed projection of the
 * inputs; the autoregressive `ar` cell projects the value it emitted at the previous step instead,
 * and needs the input Jacobian `∂h'/∂x` for the chain rule.
 */
import {
  type BindContext,
  type BoundCell,
  type ComputeBackend,
  type DType,
  type RnnProgram,
  type Tensor,
  hostRnnKernel,
} from '@pelk/core';
import { type HostStep, type Want, checkContext, makeBoundCell, uploadOwned } from './bound.js';

/** One transition from a projection: the value and what was asked for. */
export interface RnnStep {
  /** Next state `[..., D]`. */
  readonly value: Tensor;
  /** `∂value/∂prev`: `[..., D, D]` (dense) or `[..., D]` (diagonal); absent for `want = 'value'`. */
  readonly jacobian?: Tensor;
  /**
   * `∂value/∂x` with respect to the raw input `x` (before the projection), `[..., D, I]`; present
   * when `wantInput` is set, `want` is not `'value'` and the kernel was uploaded `withInput`.
   */
  readonly inputJacobian?: Tensor;
}

/** A core's weights on a backend. */
export interface RnnKernel {
  /** The projection `[..., I]` → `[..., G]` that `forward` takes as its drive (biases folded in as the cell folds them). */
  project(x: Tensor): Tensor;
  /** One transition on any leading shape: `prev` `[..., D]`, `drive` `[..., G]` from {@link project}. */
  forward(prev: Tensor, drive: Tensor, want: Want, wantInput?: boolean): RnnStep;
}

/** A GRU, LSTM or Elman transition, independent of how it is driven. */
export interface RnnCore {
  readonly kind: 'gru' | 'lstm' | 'elman';
  readonly inputSize: number;
  /** Size of the output `h` (the first `hiddenSize` entries of the state). */
  readonly hiddenSize: number;
  /** `D`: `H`, or `2H` for the LSTM (`[h, c]`). */
  readonly stateSize: number;
  /**
   * Uploads the weights; call it inside the `build` of {@link uploadOwned}. Tensors the kernel needs
   * afterwards pass through `own`. With `withInput` false, the projection weights are temporaries
   * of that build (so `project` works only inside it, as a cell's `bind` needs) and
   * `inputJacobian` is never produced; with `withInput` true they are owned, and so are the
   * input-weight blocks the input Jacobian needs.
   */
  upload(backend: ComputeBackend, dtype: DType, own: <T extends Tensor>(t: T) => T, withInput: boolean): RnnKernel;
  /** The transition as a backend-neutral program, for fused kernels (weights in PyTorch layout). */
  readonly program: Omit<RnnProgram, 'convention'>;
}

const CORES = new WeakMap<object, RnnCore>();
const PROGRAMS = new WeakMap<object, RnnProgram>();

/**
 * A cell's program, built once per cell (its weights never change): the core's program with the
 * convention of the cell's spec, read only the first time (`toSpec` builds nested weight arrays).
 */
export function rnnProgram(cell: object, core: RnnCore, convention: () => string): RnnProgram {
  let program = PROGRAMS.get(cell);
  if (!program) {
    program = { ...core.program, convention: convention() };
    PROGRAMS.set(cell, program);
  }
  return program;
}

/** Records the core of a cell of this package (called from the cell constructors). */
export function registerCore(cell: object, core: RnnCore): void {
  CORES.set(cell, core);
}

/** The core of a GRU, LSTM or Elman cell of this package, or `undefined` for any other value. */
export function coreOf(cell: unknown): RnnCore | undefined {
  return cell !== null && typeof cell === 'object' ? CORES.get(cell) : undefined;
}

/**
 * The `bind` of a recurrent cell: uploads the weights, projects all inputs once (`W_ih·u_t + b`
 * for every `t`), and runs the core's transition over the projection.
 */
export function bindRnn(core: RnnCore, backend: ComputeBackend, context: BindContext): BoundCell {
  checkContext(context, core.inputSize, core.kind);
  let kernel!: RnnKernel;
  let xproj!: Tensor;
  const owned = uploadOwned(backend, (own) => {
    kernel = core.upload(backend, context.dtype, own, false);
    xproj = own(kernel.project(context.inputs!));
  });
  return makeBoundCell({
    backend,
    kind: core.kind,
    stateSize: core.stateSize,
    context,
    drive: xproj,
    owned,
    forward: (prev, drive, want) => kernel.forward(prev, drive!, want),
    hostStep: hostStepOf(core, context.dtype),
  });
}

/** One host step over the cell's drive rows (the projection `bindRnn` computed): core's host kernel of the program. */
function hostStepOf(core: RnnCore, dtype: DType): HostStep {
  const kernel = hostRnnKernel({ ...core.program, convention: 'torch' }, dtype);
  return (prev, prevOff, drive, driveOff, out, outOff) => kernel.step(prev, prevOff, drive!, driveOff, out, outOff);
}
