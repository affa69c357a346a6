import type { ComputeBackend, DType, Tensor } from '../backend.js';
import type { BoundCell } from '../cell.js';
import type { FusedCell } from '../program.js';
import { AbortError } from '../errors.js';
import type { IterationInfo, StopReason } from '../types.js';

/** Everything a solver needs for one evaluation, already validated and uploaded. */
export interface Problem {
  readonly backend: ComputeBackend;
  readonly cell: BoundCell;
  /**
   * The backend's fused kernels for the cell's program, when it has them: solvers then linearise,
   * sweep and roll out with it instead of `cell` (which may be bound lazily, never used).
   */
  readonly fused?: FusedCell;
  readonly dtype: DType;
  readonly batch: number;
  readonly steps: number;
  readonly stateSize: number;
  /** `[B, D]` initial states. */
  readonly init: Tensor;
  readonly signal?: AbortSignal;
  readonly onIteration?: (info: IterationInfo) => void;
  /** Parallel solvers: called with each iteration's record and iterate (`[B, T, D]`, still owned by the solver). */
  readonly onIterate?: (info: IterationInfo, states: Tensor) => Promise<void>;
  /** `performance.now()` at the start of the evaluation. */
  readonly startedAt: number;
  /** Gives the event loop a turn now and then, so timers, I/O and abort signals are served. */
  readonly pacer: Pacer;
}

/** What a solver returns: the states it owns (handed to the caller) and its iteration record. */
export interface SolverOutput {
  readonly states: Tensor;
  readonly iterations: number;
  /** Why the solver stopped; `'converged'` only when `residual` is within the tolerance of a clean iterate. */
  readonly reason: StopReason;
  /** The true residual `max_t ‖s_t − f(s_{t−1})‖∞` of `states` (0 for a finite sequential trajectory). */
  readonly residual: number;
  readonly history: IterationInfo[];
  readonly nonFiniteResets: number;
  readonly clippedValues: number;
}

/** Throws {@link AbortError} when the signal has fired. */
export function checkAbort(signal: AbortSignal | undefined, iteration: number): void {
  if (signal?.aborted) throw new AbortError(iteration, signal.reason);
}

/** Milliseconds since `start`. */
export function elapsedSince(start: number): number {
  return performance.now() - start;
}

/** Resolves on the next macrotask: `setImmediate` in Node, a `MessageChannel` message in browsers and workers. */
function nextTask(): Promise<void> {
  const g = globalThis as { setImmediate?: (fn: () => void) => unknown };
  if (typeof g.setImmediate === 'function') return new Promise((resolve) => g.setImmediate!(resolve));
  if (typeof MessageChannel === 'function') {
    return new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => {
        channel.port1.close();
        resolve();
      };
      channel.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Yields to the event loop when at least `intervalMs` passed since the last yield. An evaluation
 * otherwise runs as one long stretch of resolved promises, and a timer that aborts it (or any I/O)
 * would only run after it finished. A yield costs a few microseconds (one macrotask), and at most
 * one is taken per interval, so the overhead stays far below 1 % (measured: see the evaluate docs).
 */
export class Pacer {
  private last = performance.now();

  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly intervalMs = 20,
  ) {}

  /** Yields if due, then throws {@link AbortError} if the signal fired meanwhile. */
  async tick(iteration: number): Promise<void> {
    if (performance.now() - this.last >= this.intervalMs) {
      await nextTask();
      this.last = performance.now();
    }
    checkAbort(this.signal, iteration);
  }

  /**
   * Waits for `work` (queued device work, a read-back), but throws {@link AbortError} as soon as
   * the signal fires: an abort is seen promptly even while a device is still busy.
   */
  async settle<T>(work: Promise<T>, iteration: number): Promise<T> {
    const signal = this.signal;
    if (!signal) {
      const value = await work;
      this.last = performance.now();
      return value;
    }
    checkAbort(signal, iteration);
    work.catch(() => undefined); // an abort may leave it unawaited: never an unhandled rejection
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<void>((resolve) => {
      onAbort = resolve;
      signal.addEventListener('abort', onAbort, { once: true });
    });
    let value: T | undefined;
    try {
      value = await Promise.race([work, aborted.then(() => undefined)]);
    } finally {
      signal.removeEventListener('abort', onAbort!);
    }
    checkAbort(signal, iteration);
    this.last = performance.now();
    return value as T;
  }
}
