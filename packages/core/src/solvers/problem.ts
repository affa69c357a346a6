import type { ComputeBackend, DType, Tensor } from '../backend.js';
import type { BoundCell } from '../cell.js';
import { AbortError } from '../errors.js';
import type { IterationInfo } from '../types.js';

/** Everything a solver needs for one evaluation, already validated and uploaded. */
export interface Problem {
  readonly backend: ComputeBackend;
  readonly cell: BoundCell;
  readonly dtype: DType;
  readonly batch: number;
  readonly steps: number;
  readonly stateSize: number;
  /** `[B, D]` initial states. */
  readonly init: Tensor;
  readonly signal?: AbortSignal;
  readonly onIteration?: (info: IterationInfo) => void;
  /** `performance.now()` at the start of the evaluation. */
  readonly startedAt: number;
}

/** What a solver returns: the states it owns (handed to the caller) and its iteration record. */
export interface SolverOutput {
  readonly states: Tensor;
  readonly iterations: number;
  /** The solver's own stopping test passed. */
  readonly stopped: boolean;
  readonly history: IterationInfo[];
  readonly nonFiniteResets: number;
  /** The true residual of `states`, when the solver already computed it (ELK linearises its final iterate). */
  readonly residual?: number;
}

/** Throws {@link AbortError} when the signal has fired. */
export function checkAbort(signal: AbortSignal | undefined, iteration: number): void {
  if (signal?.aborted) throw new AbortError(iteration, signal.reason);
}

/** Milliseconds since `start`. */
export function elapsedSince(start: number): number {
  return performance.now() - start;
}
