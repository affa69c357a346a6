import type { ComputeBackend, DType, Tensor } from './backend.js';
import type { HostVjp } from './grad/host-vjp.js';
import type { CellProgram } from './program.js';

/** Which Jacobian a solver needs: the full `D×D` matrix (DEER) or only its diagonal (quasi-DEER). */
export type JacobianKind = 'dense' | 'diagonal';

/**
 * A recurrent transition `s_t = f(s_{t-1}, u_t)`. Cells hold their parameters on the host and are
 * bound to a backend for one evaluation. @pelk/models provides GRU, LSTM, Elman, Lorenz-96 and a
 * custom-cell builder; anything implementing this interface works with {@link evaluate}.
 */
export interface Cell {
  /** Short type name, e.g. `'gru'`. */
  readonly kind: string;
  /** State size `D`. */
  readonly stateSize: number;
  /** Input size `I` per step; 0 for autonomous cells (they take no inputs). */
  readonly inputSize: number;
  /**
   * Uploads the parameters and precomputes everything that does not change across solver
   * iterations (e.g. the input projections `W·u_t + b` for all `t`).
   * @param inputs `[B, T, I]`, or `null` for an autonomous cell.
   */
  bind(backend: ComputeBackend, context: BindContext): BoundCell;
  /**
   * Optional: the cell as a backend-neutral {@link CellProgram}, so that a backend with fused kernels
   * for it (`ComputeBackend.bindProgram`) evaluates it in one pass per sweep instead of op by op.
   * Custom cells leave it out.
   */
  program?(): CellProgram | undefined;
  /**
   * Optional: the cell's analytic vector–Jacobian products on the host, in float64, with its
   * parameters named as the cell names them (for `grad`), the weights rounded as `dtype` stores
   * them. Cells with a {@link program} need not implement it: `grad` derives it from the program
   * (in PyTorch-layout names); cells with neither get products from their dense Jacobian. A cell
   * with both must have them agree — they differentiate the same transition — since `grad` may
   * run the program's fused adjoint kernels instead and use only this one's `report` (names).
   */
  hostVjp?(dtype: DType): HostVjp;
}

/** What a cell is bound to. */
export interface BindContext {
  readonly dtype: DType;
  /** `[B, T, I]` inputs, or `null` for autonomous cells. Owned by the caller. */
  readonly inputs: Tensor | null;
  readonly batch: number;
  readonly steps: number;
}

/** A fused sequential evaluation in progress (see {@link BoundCell.rollout}). */
export interface Rollout {
  /** `[B, T, D]`, filled in as steps are done. The caller owns it (and frees it if it stops early). */
  readonly states: Tensor;
  /** Runs the next `count` steps (fewer at the end) for every batch entry; returns the steps done so far. */
  advance(count: number): number;
  /**
   * Device backends, whose `advance` only queues the work: resolves once the steps advanced so far
   * are computed, so that the caller paces its slices (and sees an abort) by the device's time.
   */
  settle?(): Promise<void>;
}

/** A cell bound to a backend and a set of inputs. It owns the tensors it created; `dispose` frees them. */
export interface BoundCell {
  /** `f(prev_t, u_t)` for every batch entry and step at once: `prev` `[B, T, D]` → `[B, T, D]`. */
  apply(prev: Tensor): Tensor;
  /**
   * `f` and its Jacobian with respect to the state, at every step: `value` `[B, T, D]`,
   * `jacobian` `[B, T, D, D]` (dense) or `[B, T, D]` (diagonal).
   */
  linearize(prev: Tensor, kind: JacobianKind): { value: Tensor; jacobian: Tensor };
  /**
   * Optional: {@link linearize} on the steps `[start, start + n)` only, for `prev` `[B, n, D]` (the
   * states entering those steps); returns `value` `[B, n, D]` and the Jacobians of those steps. It
   * lets a solver linearise a long sequence in segments and serve the event loop in between. Must
   * equal the corresponding rows of `linearize` up to rounding.
   */
  linearizeRange?(prev: Tensor, start: number, kind: JacobianKind): { value: Tensor; jacobian: Tensor };
  /** One step for every batch entry: `prev` `[B, D]` (the state at `t - 1`) → `[B, D]` at step `t` (0-based). */
  step(prev: Tensor, t: number): Tensor;
  /**
   * Optional fused sequential evaluation from `init` `[B, D]`. A cell implements it when it has a
   * faster kernel than step-by-step ops on this backend (e.g. a host loop on a host-memory backend);
   * it returns `undefined` to fall back to {@link step}. The solver advances it in slices of steps,
   * so it can report progress and serve the event loop (and abort signals) in between. It must give
   * the same trajectory as `step` up to rounding, computed with the parameters in the bound dtype.
   */
  rollout?(init: Tensor): Rollout | undefined;
  dispose(): void;
}
