/**
 * Runs the selected methods on one backend and reports as it goes — the same code on the page
 * (WebGPU) and in the CPU backend's Web Worker. Sequential evaluation runs first: it is the
 * reference every other method is compared with. Each method runs twice: first with its iterates
 * streamed to the page (when animating) or as a warm-up, then timed with nothing but progress
 * reports, so the table's times carry no read-backs and no shader compilation.
 */
import { AbortError, type ComputeBackend, type EvaluateOptions, evaluate, type Method } from '@pelk/core';
import { buildProblem } from './problems.js';
import type { Settings } from './settings.js';

/** State channels drawn (of batch entry 0). */
export const DRAWN_CHANNELS = 3;
/** Points per drawn channel at most (longer trajectories are subsampled). */
export const DRAWN_POINTS = 1000;
/**
 * Animation reads the whole trajectory back each iteration (core's `onIterate`): beyond this many
 * states (B·T·D) the run is not animated, so the read-backs never dominate or exhaust memory.
 */
export const MAX_ANIMATED_STATES = 2 ** 22;

/** One method's row of the results table (plain JSON: it crosses the worker boundary and `window.pelkDemo`). */
export interface MethodSummary {
  readonly method: Method;
  /** Wall time of the timed run, milliseconds. */
  readonly ms: number;
  /** Microseconds per time step (all B sequences of that step together): `1000·ms / T`. */
  readonly usPerStep: number;
  readonly iterations: number;
  readonly converged: boolean;
  /** Why it stopped (`converged`, `max-iterations`, `stalled`, …), or the error that ended it. */
  readonly reason: string;
  /** True residual of the returned trajectory. */
  readonly residual: number;
  /** `max |s − s_sequential|` over every state. */
  readonly maxAbsDiffVsSequential: number | null;
  /** Sequential time / this time (same backend); `null` when either did not converge or failed. */
  readonly speedup: number | null;
  readonly dtype: string;
  /** Residual after each iteration (for the residual plot). */
  readonly history: readonly { readonly iteration: number; readonly residual: number }[];
  /** Method `auto`: the methods it ran, in order (e.g. `quasi-elk`, or `sequential` on a CPU). */
  readonly ran?: readonly Method[];
  /** Set when the method failed (e.g. refused for memory): the message. */
  readonly error?: string;
}

/** What a run reports as it goes. */
export type RunEvent =
  | { readonly kind: 'reference'; readonly channels: number[][]; readonly stride: number }
  | { readonly kind: 'iterate'; readonly method: Method; readonly iteration: number; readonly residual: number; readonly channels: number[][] }
  | { readonly kind: 'progress'; readonly method: Method; readonly iteration: number; readonly residual: number; readonly fraction?: number }
  /** A timed run starts (`true`) or ends: the page holds its animation meanwhile, so it does not slow the timing. */
  | { readonly kind: 'timing'; readonly method: Method; readonly active: boolean }
  | { readonly kind: 'notice'; readonly text: string }
  | { readonly kind: 'method'; readonly summary: MethodSummary };

/** The first `DRAWN_CHANNELS` channels of batch entry 0, every `stride`-th step. */
export function drawnChannels(states: ArrayLike<number>, T: number, D: number): { channels: number[][]; stride: number } {
  const stride = Math.max(1, Math.ceil(T / DRAWN_POINTS));
  const channels: number[][] = [];
  for (let c = 0; c < Math.min(DRAWN_CHANNELS, D); c++) {
    const line: number[] = [];
    for (let t = 0; t < T; t += stride) line.push(states[t * D + c]);
    channels.push(line);
  }
  return { channels, stride };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}

/**
 * Runs sequential and then every selected method on `backend`, calling `emit` with each event.
 * Returns the rows of the table (sequential first). An abort rejects with core's `AbortError`;
 * a method that fails otherwise gets a row with its error and the run goes on.
 */
export async function runMethods(backend: ComputeBackend, settings: Settings, emit: (e: RunEvent) => void, signal?: AbortSignal): Promise<MethodSummary[]> {
  const problem = buildProblem(settings);
  const { T, D } = settings;
  const base: EvaluateOptions = {
    backend,
    ...problem.options,
    ...(settings.tolerance === undefined ? {} : { tolerance: settings.tolerance }),
    ...(settings.maxIterations === undefined ? {} : { maxIterations: settings.maxIterations }),
    sigmaSq: settings.sigmaSq,
    lyapunov: false,
    signal,
  };
  const progress = (method: Method): EvaluateOptions['onIteration'] => (info) =>
    emit({ kind: 'progress', method, iteration: info.iteration, residual: info.residual, fraction: info.fraction });

  const rows: MethodSummary[] = [];
  const animate = settings.animate && settings.B * T * D <= MAX_ANIMATED_STATES;
  if (settings.animate && !animate) {
    emit({ kind: 'notice', text: `Not animated: ${(settings.B * T * D).toLocaleString('en-US')} states are more than the ${MAX_ANIMATED_STATES.toLocaleString('en-US')} the animation reads back per iteration.` });
  }
  /** Evaluates (timing the evaluation alone), reads the states back and frees the result whatever happens. */
  const solve = async (options: EvaluateOptions) => {
    const t0 = performance.now();
    const result = await evaluate(problem.cell, problem.inputs, options);
    const ms = performance.now() - t0;
    try {
      return { result, ms, states: await result.read() };
    } finally {
      result.dispose();
    }
  };
  // Sequential: the reference trajectory (first run), then its timed run.
  const { states: reference } = await solve({ ...base, method: 'sequential', onIteration: progress('sequential') });
  emit({ kind: 'reference', ...drawnChannels(reference, T, D) });
  let sequentialMs = Number.NaN;
  const methods: Method[] = ['sequential', ...settings.methods.filter((m) => m !== 'sequential')];
  for (const method of methods) {
    try {
      if (method !== 'sequential') {
        // Animated (or warm-up) run.
        const onIterate: EvaluateOptions['onIterate'] = animate
          ? ({ info, states }) => emit({ kind: 'iterate', method, iteration: info.iteration, residual: info.residual, channels: drawnChannels(states, T, D).channels })
          : undefined;
        (await evaluate(problem.cell, problem.inputs, { ...base, method, onIterate, onIteration: progress(method) })).dispose();
      }
      // The timed run: no progress reports, no animation on the page meanwhile.
      emit({ kind: 'timing', method, active: true });
      let timed: Awaited<ReturnType<typeof solve>>;
      try {
        timed = await solve({ ...base, method });
      } finally {
        emit({ kind: 'timing', method, active: false });
      }
      const { result, states, ms } = timed;
      if (method === 'sequential') sequentialMs = ms;
      const row: MethodSummary = {
        method,
        ms,
        usPerStep: (1000 * ms) / T,
        iterations: result.iterations,
        converged: result.converged,
        reason: result.reason,
        residual: result.residual,
        maxAbsDiffVsSequential: maxAbsDiff(states, reference),
        speedup: result.converged && Number.isFinite(sequentialMs) ? sequentialMs / ms : null,
        dtype: result.dtype,
        history: result.history.map((h) => ({ iteration: h.iteration, residual: h.residual })),
        ...(method === 'auto' ? { ran: result.methods.map((m) => m.method) } : {}),
      };
      if (settings.methods.includes(method)) {
        rows.push(row);
        emit({ kind: 'method', summary: row });
      }
    } catch (err) {
      if (err instanceof AbortError || signal?.aborted) throw err;
      const row: MethodSummary = {
        method,
        ms: Number.NaN,
        usPerStep: Number.NaN,
        iterations: 0,
        converged: false,
        reason: 'error',
        residual: Number.NaN,
        maxAbsDiffVsSequential: null,
        speedup: null,
        dtype: '',
        history: [],
        error: `${(err as Error).name}: ${(err as Error).message}`,
      };
      rows.push(row);
      emit({ kind: 'method', summary: row });
    }
  }
  return rows;
}
