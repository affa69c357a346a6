import type { Tensor } from '../backend.js';
import type { JacobianKind } from '../cell.js';
import type { IterationInfo, StopReason } from '../types.js';
import { type Problem, type SolverOutput, elapsedSince } from './problem.js';

/** Settings of a Newton-type (DEER / quasi-DEER) solve. */
export interface NewtonSettings {
  readonly jacobian: JacobianKind;
  readonly tolerance: number;
  readonly maxIterations: number;
  readonly clip: number;
  /** Called after each iteration; returning true abandons the run (method `auto` watches for divergence). */
  readonly monitor?: (info: IterationInfo) => boolean;
}

/**
 * Iterations in a row whose step is within the tolerance while the residual sets no new low before
 * a run counts as stalled: the iterate has stopped moving at the scale of the tolerance but is not
 * a solution within it (a float32 rounding floor above a tight tolerance, typically on chaotic
 * models). A slowly converging run still lowers its residual and is not stopped.
 */
export const STALL_ITERATIONS = 5;

/** A linearisation `s_t ≈ A_t s_{t−1} + b_t` around an iterate, and that iterate's true residual. */
interface Linearization {
  readonly jacobian: Tensor;
  readonly offset: Tensor;
  readonly residual: number;
}

/**
 * Linearises the cell around `states` (ALGORITHMS.md §2): the Jacobians `A_t`, the offsets
 * `b_t = f(s_{t−1}) − A_t s_{t−1}`, and — from the same values — the true residual
 * `max_t ‖s_t − f(s_{t−1})‖∞`, the certificate of `states`. Optionally also `½Σ‖r_t‖²` (ELK's merit).
 */
export async function linearizeAt(
  p: Problem,
  states: Tensor,
  jacobian: JacobianKind,
  withMerit: boolean,
): Promise<Linearization & { merit: number }> {
  const { backend, cell, init } = p;
  let residualP!: Promise<number>;
  let meritP: Promise<number> = Promise.resolve(Number.NaN);
  const parts = backend.tidy(() => {
    const prev = backend.shiftTime(states, init);
    const lin = cell.linearize(prev, jacobian);
    residualP = backend.maxAbsDiff(states, lin.value);
    if (withMerit) meritP = backend.sumSquaredDiff(states, lin.value);
    const applied = jacobian === 'dense' ? backend.matvec(lin.jacobian, prev) : backend.binary('mul', lin.jacobian, prev);
    return { jacobian: lin.jacobian, offset: backend.binary('sub', lin.value, applied) };
  });
  try {
    const [residual, sumSq] = await Promise.all([residualP, meritP]);
    return { ...parts, residual, merit: 0.5 * sumSq };
  } catch (err) {
    backend.dispose([parts.jacobian, parts.offset]);
    throw err;
  }
}

/** Why an iteration that is not converged cannot go on: it repeated its iterate exactly. */
export function repeatReason(nonFinite: number, clipped: number): StopReason {
  return clipped > 0 ? 'clipped' : nonFinite > 0 ? 'non-finite' : 'stalled';
}

/**
 * DEER (dense Jacobians) and quasi-DEER (diagonal Jacobians), ALGORITHMS.md §2–3.
 *
 * Each iteration solves the linear recurrence of the current linearisation with the backend's
 * parallel scan; the new iterate's values beyond `±clip` are clipped and NaN reset to 0, which keeps
 * the finite-convergence guarantee (§4). The new iterate is then linearised — for the next step, and
 * for its true residual, which is the stopping test: the run stops converged only when the residual
 * of the iterate it returns is within the tolerance and no value of that iterate was clipped or reset.
 * It also stops when the iterate repeats exactly (the clipped or reset iterate of a trajectory that
 * outgrows the clip bound, or a rounding floor), when the residual stalls ({@link STALL_ITERATIONS}),
 * at the iteration cap, or when the monitor abandons it.
 *
 * @param guess the first iterate `[B, T, D]`; ownership passes to the solver.
 */
export async function solveNewton(p: Problem, guess: Tensor, s: NewtonSettings): Promise<SolverOutput> {
  const { backend, init } = p;
  const history: IterationInfo[] = [];
  let states = guess;
  let lin: Linearization | undefined;
  let resets = 0;
  let clippedTotal = 0;
  // Counts of the current iterate (the guess is taken as given).
  let nonFinite = 0;
  let clipped = 0;
  let iteration = 0;
  let best = Number.POSITIVE_INFINITY;
  let stalls = 0;
  let reason: StopReason | undefined;
  try {
    lin = await linearizeAt(p, states, s.jacobian, false);
    for (;;) {
      const residual = lin.residual;
      if (residual <= s.tolerance && nonFinite === 0 && clipped === 0) reason = 'converged';
      else if (iteration >= s.maxIterations) reason = 'max-iterations';
      if (reason) break;
      await p.pacer.tick(iteration);
      iteration++;
      const from = lin;
      const current = states;
      let nonFiniteP!: Promise<number>;
      let clippedP!: Promise<number>;
      let stepP!: Promise<number>;
      const next = backend.tidy(() => {
        const solved =
          s.jacobian === 'dense'
            ? backend.linearScanDense(from.jacobian, from.offset, init)
            : backend.linearScanDiagonal(from.jacobian, from.offset, init);
        const clean = backend.sanitize(solved, s.clip);
        nonFiniteP = clean.nonFinite;
        clippedP = clean.clipped;
        stepP = backend.maxAbsDiff(clean.value, current);
        return clean.value;
      });
      states = next;
      lin = undefined;
      backend.dispose([from.jacobian, from.offset, current]);
      let step: number;
      [nonFinite, clipped, step] = await Promise.all([nonFiniteP, clippedP, stepP]);
      resets += nonFinite;
      clippedTotal += clipped;
      lin = await linearizeAt(p, states, s.jacobian, false);
      const info: IterationInfo = {
        iteration,
        residual: lin.residual,
        step,
        nonFinite,
        clipped,
        elapsedMs: elapsedSince(p.startedAt),
      };
      history.push(info);
      p.onIteration?.(info);
      const done = lin.residual <= s.tolerance && nonFinite === 0 && clipped === 0;
      if (!done) {
        // Deterministic: an exact repeat would repeat forever.
        if (step === 0) reason = repeatReason(nonFinite, clipped);
        stalls = step <= s.tolerance && !(lin.residual < best) ? stalls + 1 : 0;
        if (stalls >= STALL_ITERATIONS) reason = 'stalled';
        if (!reason && s.monitor?.(info)) reason = 'abandoned';
        if (reason) break;
      }
      best = Math.min(best, lin.residual);
    }
    backend.dispose([lin.jacobian, lin.offset]);
    return {
      states,
      iterations: iteration,
      reason,
      residual: lin.residual,
      history,
      nonFiniteResets: resets,
      clippedValues: clippedTotal,
    };
  } catch (err) {
    if (lin) backend.dispose([lin.jacobian, lin.offset]);
    backend.dispose(states);
    throw err;
  }
}
