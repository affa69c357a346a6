import type { ComputeBackend, Tensor } from '../backend.js';
import type { BoundCell, Rollout } from '../cell.js';
import type { FusedCell } from '../program.js';
import { type Problem, type SolverOutput, elapsedSince } from './problem.js';

/** Steps per chunk: per-step results are stacked into one tensor this often, so step tensors are recycled. */
const CHUNK = 1024;

/** Wall time a slice of a fused rollout aims at between two looks at the event loop. */
const SLICE_MS = 10;

/**
 * Sequential evaluation: `s_t = f(s_{t-1}, u_t)` for t = 1..T, one step (for the whole batch) at a
 * time. Exact; O(T) depth. A cell's fused `rollout` is used when it offers one for this backend,
 * advanced in slices of about {@link SLICE_MS} ms; otherwise every step runs the cell's ops, its
 * temporaries are freed (returned to the backend's pool) before the next step, and per-step outputs
 * are packed into chunks of {@link CHUNK} steps. Either way `onIteration` is called every
 * `progressEvery` steps and the event loop is served between slices, so an abort is seen promptly.
 *
 * The result satisfies `s_t = f(s_{t−1})` by construction: its residual is reported as 0 when the
 * trajectory is finite, and as NaN (reason `'non-finite'`) when it overflowed.
 */
export async function solveSequential(p: Problem, progressEvery: number): Promise<SolverOutput> {
  return certify(p.backend, await sequentialStates(p, progressEvery));
}

/** The states of a sequential evaluation (fused rollout or step by step). */
async function sequentialStates(p: Problem, progressEvery: number): Promise<Tensor> {
  await p.pacer.tick(0);
  const fused = p.fused ? p.fused.rollout(p.init) : p.cell.rollout?.(p.init);
  return fused ? runRollout(p, fused, progressEvery) : stepByStep(p, progressEvery);
}

/**
 * Steps per segment of {@link solveSequentialSegments}: small enough that binding a segment (its
 * input projection) takes a few milliseconds, large enough that per-segment overhead vanishes.
 */
export const SEGMENT_STEPS = 16384;

/** A sequential problem before binding: everything but the bound cell and the step count. */
export type SequentialBase = Omit<Problem, 'cell' | 'steps'>;

/**
 * Binds the cell (and the backend's fused kernels for it, if any) to steps `[start, start + steps)`
 * of the inputs; `owned` is freed after the segment.
 */
export type SegmentBinder = (start: number, steps: number) => { cell: BoundCell; fused?: FusedCell; owned: Tensor[] };

/**
 * Sequential evaluation in segments of time: each segment binds the cell to its own slice of the
 * inputs (so the input projection of the whole sequence never exists at once, and no single
 * synchronous stretch grows with T), runs from the last state of the previous segment. On host-memory
 * backends each segment's states are copied into the output as soon as the segment ends (no join
 * at the end, no second copy of the trajectory); elsewhere the segments are joined at the end. The
 * trajectory is the same as in one piece: the cell is time-invariant given its inputs
 * (`s_t = f(s_{t−1}, u_t)`).
 */
export async function solveSequentialSegments(
  base: SequentialBase,
  steps: number,
  bind: SegmentBinder,
  progressEvery: number,
): Promise<SolverOutput> {
  const { backend } = base;
  // A multiple of progressEvery, so that reports fall on the same steps as in one piece.
  const segment = Math.max(1, Math.ceil(SEGMENT_STEPS / progressEvery)) * progressEvery;
  const { batch: B, stateSize: D } = base;
  const hostData = steps > segment ? backend.hostData?.bind(backend) : undefined;
  const chunks: Tensor[] = [];
  let carried: Tensor | undefined;
  let out: Tensor | undefined;
  try {
    // A fresh tensor, filled in place segment by segment (host-memory backends).
    if (hostData) out = backend.fill([B, steps, D], 0, base.dtype);
    for (let start = 0; start < steps; start += segment) {
      const len = Math.min(segment, steps - start);
      await base.pacer.tick(0);
      const { cell, fused, owned } = bind(start, len);
      try {
        const onIteration =
          base.onIteration && ((info: Parameters<NonNullable<Problem['onIteration']>>[0]) =>
            base.onIteration?.({ ...info, fraction: (start + (info.fraction ?? 0) * len) / steps }));
        const p: Problem = { ...base, cell, fused, steps: len, init: carried ?? base.init, onIteration };
        const states = await sequentialStates(p, progressEvery);
        chunks.push(states);
      } finally {
        fused?.dispose();
        cell.dispose();
        backend.dispose(owned);
      }
      if (carried) backend.dispose(carried);
      carried = undefined;
      const last = chunks[chunks.length - 1];
      if (start + len < steps) carried = backend.tidy(() => backend.timeStep(last, len - 1));
      if (out && hostData) {
        const o = hostData(out);
        const src = hostData(last);
        for (let b = 0; b < B; b++) o.set(src.subarray(b * len * D, (b + 1) * len * D), (b * steps + start) * D);
        backend.dispose(chunks.pop()!);
      }
      if (start + len < steps) {
        // The end of a segment is a report point (segments are multiples of progressEvery).
        base.onIteration?.({
          iteration: 1,
          residual: Number.NaN,
          step: Number.NaN,
          nonFinite: 0,
          clipped: 0,
          elapsedMs: elapsedSince(base.startedAt),
          fraction: (start + len) / steps,
        });
      }
    }
    const states = out ?? (chunks.length === 1 ? chunks[0] : backend.concat(chunks, 1));
    if (!out && chunks.length > 1) backend.dispose(chunks);
    chunks.length = 0; // from here on `certify` owns the states
    out = undefined;
    return certify(backend, states);
  } catch (err) {
    if (carried) backend.dispose(carried);
    if (out) backend.dispose(out);
    backend.dispose(chunks);
    throw err;
  }
}

/** The sequential result of `states`: residual 0 by construction when finite, NaN otherwise. */
async function certify(backend: ComputeBackend, states: Tensor): Promise<SolverOutput> {
  try {
    const finite = Number.isFinite(await backend.maxAbs(states));
    return {
      states,
      iterations: 1,
      reason: finite ? 'converged' : 'non-finite',
      residual: finite ? 0 : Number.NaN,
      history: [],
      nonFiniteResets: 0,
      clippedValues: 0,
    };
  } catch (err) {
    backend.dispose(states);
    throw err;
  }
}

function reportProgress(p: Problem, done: number): void {
  p.onIteration?.({
    iteration: 1,
    residual: Number.NaN,
    step: Number.NaN,
    nonFinite: 0,
    clipped: 0,
    elapsedMs: elapsedSince(p.startedAt),
    fraction: done / p.steps,
  });
}

/** Advances a fused rollout in slices sized to take about {@link SLICE_MS} each. */
async function runRollout(p: Problem, rollout: Rollout, progressEvery: number): Promise<Tensor> {
  const { steps } = p;
  try {
    let done = 0;
    let slice = 16;
    let nextReport = progressEvery;
    while (done < steps) {
      const count = Math.min(slice, nextReport - done, steps - done);
      const t0 = performance.now();
      done = rollout.advance(count);
      // On a device backend the slice is timed (and paced) by when the device finished it.
      if (rollout.settle) await p.pacer.settle(rollout.settle(), 0);
      const ms = performance.now() - t0;
      // Grow (at most ×4) or shrink the slice toward the target duration.
      slice = Math.max(1, Math.round(count * Math.min(4, SLICE_MS / Math.max(ms, 1e-3))));
      if (done >= nextReport) {
        if (done < steps) reportProgress(p, done);
        nextReport += progressEvery;
      }
      if (done < steps) await p.pacer.tick(0);
    }
    return rollout.states;
  } catch (err) {
    p.backend.dispose(rollout.states);
    throw err;
  }
}

/** Step-by-step ops, for cells without a fused rollout on this backend. */
async function stepByStep(p: Problem, progressEvery: number): Promise<Tensor> {
  const { backend, cell, steps } = p;
  const chunks: Tensor[] = [];
  let pending: Tensor[] = [];
  // The state entering the current step when it belongs to an already-stacked chunk.
  let carried: Tensor | undefined;
  let prev: Tensor = p.init;
  try {
    for (let t = 0; t < steps; t++) {
      await p.pacer.tick(0);
      const prevInput = prev;
      const next = backend.tidy(() => cell.step(prevInput, t));
      if (carried) {
        backend.dispose(carried);
        carried = undefined;
      }
      pending.push(next);
      prev = next;
      if (pending.length === CHUNK || t === steps - 1) {
        chunks.push(backend.stackTime(pending));
        // The last step stays alive as the next step's input.
        carried = pending.pop();
        backend.dispose(pending);
        pending = [];
      }
      if ((t + 1) % progressEvery === 0 && t + 1 < steps) reportProgress(p, t + 1);
    }
    if (carried) backend.dispose(carried);
    const states = chunks.length === 1 ? chunks[0] : backend.concat(chunks, 1);
    if (chunks.length > 1) backend.dispose(chunks);
    return states;
  } catch (err) {
    backend.dispose(pending);
    if (carried) backend.dispose(carried);
    backend.dispose(chunks);
    throw err;
  }
}
