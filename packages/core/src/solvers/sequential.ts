import type { Tensor } from '../backend.js';
import { type Problem, type SolverOutput, checkAbort, elapsedSince } from './problem.js';

/** Steps per chunk: per-step results are stacked into one tensor this often, so step tensors are recycled. */
const CHUNK = 1024;

/**
 * Sequential evaluation: `s_t = f(s_{t-1}, u_t)` for t = 1..T, one step (for the whole batch) at a
 * time. Exact; O(T) depth. A cell's fused `rollout` is used when it offers one for this backend;
 * otherwise every step runs the cell's ops, its temporaries are freed (returned to the backend's
 * pool) before the next step, and per-step outputs are packed into chunks of {@link CHUNK} steps.
 */
export function solveSequential(p: Problem, progressEvery: number): SolverOutput {
  const { backend, cell, steps } = p;
  checkAbort(p.signal, 0);
  const fused = cell.rollout?.(p.init);
  if (fused) return { states: fused, iterations: 1, stopped: true, history: [], nonFiniteResets: 0 };
  const chunks: Tensor[] = [];
  let pending: Tensor[] = [];
  // The state entering the current step when it belongs to an already-stacked chunk.
  let carried: Tensor | undefined;
  let prev: Tensor = p.init;
  try {
    for (let t = 0; t < steps; t++) {
      if (t % CHUNK === 0) checkAbort(p.signal, 0);
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
      if (p.onIteration && (t + 1) % progressEvery === 0 && t + 1 < steps) {
        p.onIteration({
          iteration: 1,
          residual: Number.NaN,
          step: Number.NaN,
          nonFinite: 0,
          elapsedMs: elapsedSince(p.startedAt),
          fraction: (t + 1) / steps,
        });
      }
    }
    if (carried) backend.dispose(carried);
    const states = chunks.length === 1 ? chunks[0] : backend.concat(chunks, 1);
    if (chunks.length > 1) backend.dispose(chunks);
    return { states, iterations: 1, stopped: true, history: [], nonFiniteResets: 0 };
  } catch (err) {
    backend.dispose(pending);
    if (carried) backend.dispose(carried);
    backend.dispose(chunks);
    throw err;
  }
}
