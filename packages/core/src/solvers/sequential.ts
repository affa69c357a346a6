import type { Tensor } from '../backend.js';
import type { Rollout } from '../cell.js';
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
  const { cell } = p;
  await p.pacer.tick(0);
  const fused = cell.rollout?.(p.init);
  const states = fused ? await runRollout(p, fused, progressEvery) : await stepByStep(p, progressEvery);
  try {
    const finite = Number.isFinite(await p.backend.maxAbs(states));
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
    p.backend.dispose(states);
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
