import type { Tensor } from '../backend.js';
import type { JacobianKind } from '../cell.js';
import type { IterationInfo } from '../types.js';
import { type Problem, type SolverOutput, checkAbort, elapsedSince } from './problem.js';

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
 * DEER (dense Jacobians) and quasi-DEER (diagonal Jacobians), ALGORITHMS.md §2–3.
 *
 * Each iteration linearises the cell around the current iterate at every step at once,
 * `s_t ≈ A_t s_{t−1} + b_t` with `b_t = f(s^(i)_{t−1}) − A_t s^(i)_{t−1}`, and solves that linear
 * recurrence with the backend's parallel scan. Non-finite values in the new iterate are reset
 * (NaN → 0, clip to ±clip), which keeps the finite-convergence guarantee (§4).
 *
 * @param guess the first iterate `[B, T, D]`; ownership passes to the solver.
 */
export async function solveNewton(p: Problem, guess: Tensor, s: NewtonSettings): Promise<SolverOutput> {
  const { backend, cell, init } = p;
  const history: IterationInfo[] = [];
  let states = guess;
  let resets = 0;
  let stopped = false;
  let iteration = 0;
  try {
    while (iteration < s.maxIterations) {
      checkAbort(p.signal, iteration);
      iteration++;
      const current = states;
      // Everything but the new iterate and the scalar reductions is freed when tidy returns.
      let residualP!: Promise<number>;
      let stepP!: Promise<number>;
      let nonFiniteP!: Promise<number>;
      const next = backend.tidy(() => {
        const prev = backend.shiftTime(current, init);
        const { value, jacobian } = cell.linearize(prev, s.jacobian);
        residualP = backend.maxAbsDiff(current, value);
        const applied = s.jacobian === 'dense' ? backend.matvec(jacobian, prev) : backend.binary('mul', jacobian, prev);
        const offset = backend.binary('sub', value, applied);
        const solved =
          s.jacobian === 'dense'
            ? backend.linearScanDense(jacobian, offset, init)
            : backend.linearScanDiagonal(jacobian, offset, init);
        const { value: clean, nonFinite } = backend.sanitize(solved, s.clip);
        nonFiniteP = nonFinite;
        stepP = backend.maxAbsDiff(clean, current);
        return clean;
      });
      states = next;
      backend.dispose(current);
      const [residual, step, nonFinite] = await Promise.all([residualP, stepP, nonFiniteP]);
      resets += nonFinite;
      const info: IterationInfo = { iteration, residual, step, nonFinite, elapsedMs: elapsedSince(p.startedAt) };
      history.push(info);
      p.onIteration?.(info);
      if (nonFinite === 0 && step <= s.tolerance) {
        stopped = true;
        break;
      }
      if (s.monitor?.(info)) break;
    }
    return { states, iterations: iteration, stopped, history, nonFiniteResets: resets };
  } catch (err) {
    backend.dispose(states);
    throw err;
  }
}
