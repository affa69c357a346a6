import type { Tensor } from '../backend.js';
import type { JacobianKind } from '../cell.js';
import type { IterationInfo } from '../types.js';
import { type Problem, type SolverOutput, checkAbort, elapsedSince } from './problem.js';

/** How ELK damps its steps. */
export type ElkDamping =
  | { readonly mode: 'fixed'; readonly sigmaSq: number }
  | {
      readonly mode: 'adaptive';
      /** σ² of the first step. */
      readonly initial: number;
      /**
       * Bounds of σ². When rejections push σ² below `min` the run has stalled: it restarts from the
       * lowest-merit iterate seen, with σ² back at `initial` and capped at the σ² that produced
       * that iterate (at most `restarts` times; then it ends unconverged).
       */
      readonly min: number;
      readonly restarts: number;
      readonly max: number;
      /** σ² is multiplied by `grow` after a step that lowered the merit and divided by `shrink` after a rejected one. */
      readonly grow: number;
      readonly shrink: number;
      /**
       * A candidate is accepted while its merit stays below `slack ×` the current iterate's (1: a
       * monotone Levenberg–Marquardt test). The Kalman-filter step is not a descent step of the
       * merit, so a slack > 1 lets it progress through temporary increases while still rejecting
       * the blow-ups of under-damped steps (they jump by orders of magnitude).
       */
      readonly slack: number;
      /** …and below `ceiling ×` the initial guess's merit, so that merit cannot drift up without bound. */
      readonly ceiling: number;
    };

/** Settings of an ELK / quasi-ELK solve. */
export interface ElkSettings {
  readonly jacobian: JacobianKind;
  /** `'filter'`: the Kalman filter mean (the reference code's choice); `'smoother'`: the exact LM step. */
  readonly kalman: 'filter' | 'smoother';
  readonly damping: ElkDamping;
  readonly tolerance: number;
  readonly maxIterations: number;
  readonly clip: number;
}

/** A linearisation of the cell around an iterate. */
interface Linearization {
  readonly states: Tensor;
  readonly jacobian: Tensor;
  /** `b_t = f(s_{t−1}) − A_t s_{t−1}`. */
  readonly offset: Tensor;
  /** `½ Σ ‖s_t − f(s_{t−1})‖²`. */
  readonly merit: number;
  /** `max_t ‖s_t − f(s_{t−1})‖∞`. */
  readonly residual: number;
}

/**
 * ELK (dense Jacobians) and quasi-ELK (diagonal), ALGORITHMS.md §5–6: each iteration linearises the
 * cell around the current iterate and takes the Levenberg–Marquardt-damped step computed by a
 * parallel Kalman filter (or smoother) whose pseudo-observations are the current iterate with
 * variance σ² = 1/λ.
 *
 * With adaptive damping a candidate is accepted unless its merit `½Σ‖r_t‖²` jumps above `slack ×`
 * the current one; σ² grows (less damping, towards DEER's Newton steps) after each accepted step
 * that lowered the merit, and a rejected step is retried from the last accepted iterate with σ²
 * shrunk (more damping). An accepted candidate's linearisation is
 * reused for the next step, so an accepted step costs one linearisation and one Kalman pass, as
 * with fixed damping.
 */
export async function solveElk(p: Problem, guess: Tensor, s: ElkSettings): Promise<SolverOutput> {
  const { backend, cell, init } = p;
  const history: IterationInfo[] = [];
  let resets = 0;
  let accepted: Linearization | undefined;
  let startMerit = Number.POSITIVE_INFINITY;
  let sigmaSq = s.damping.mode === 'fixed' ? s.damping.sigmaSq : s.damping.initial;
  let sigmaMax = s.damping.mode === 'fixed' ? sigmaSq : s.damping.max;
  // The lowest-merit iterate so far (a copy), where a stalled run restarts.
  let best: { states: Tensor; merit: number; sigmaSq: number } | undefined;
  let restarts = 0;
  const remember = (lin: Linearization, sigma: number) => {
    if (s.damping.mode === 'fixed' || (best && best.merit <= lin.merit)) return;
    if (best) backend.dispose(best.states);
    best = { states: backend.tidy(() => backend.affine(lin.states, 1, 0)), merit: lin.merit, sigmaSq: sigma };
  };
  let stopped = false;
  let iteration = 0;
  const free = (lin: Linearization | undefined) => {
    if (lin) backend.dispose([lin.states, lin.jacobian, lin.offset]);
  };

  // Takes ownership of `states`: they become the linearisation's, or are freed if it fails.
  const linearize = async (states: Tensor): Promise<Linearization> => {
    let meritP!: Promise<number>;
    let residualP!: Promise<number>;
    let parts: { jacobian: Tensor; offset: Tensor } | undefined;
    try {
      parts = backend.tidy(() => {
        const prev = backend.shiftTime(states, init);
        const lin = cell.linearize(prev, s.jacobian);
        meritP = backend.sumSquaredDiff(states, lin.value);
        residualP = backend.maxAbsDiff(states, lin.value);
        const applied = s.jacobian === 'dense' ? backend.matvec(lin.jacobian, prev) : backend.binary('mul', lin.jacobian, prev);
        return { jacobian: lin.jacobian, offset: backend.binary('sub', lin.value, applied) };
      });
      const [sumSq, residual] = await Promise.all([meritP, residualP]);
      return { states, jacobian: parts.jacobian, offset: parts.offset, merit: 0.5 * sumSq, residual };
    } catch (err) {
      backend.dispose(parts ? [states, parts.jacobian, parts.offset] : [states]);
      throw err;
    }
  };

  try {
    accepted = await linearize(guess);
    startMerit = accepted.merit;
    remember(accepted, sigmaSq);
    while (iteration < s.maxIterations) {
      checkAbort(p.signal, iteration);
      iteration++;
      const from: Linearization = accepted;
      const sigmaUsed = sigmaSq;
      // A candidate from the accepted iterate: the damped step, by a Kalman pass.
      let nonFiniteP!: Promise<number>;
      let stepP!: Promise<number>;
      const candidate = backend.tidy(() => {
        const model = {
          transition: from.jacobian,
          bias: from.offset,
          observation: from.states,
          init,
          processVariance: 1,
          observationVariance: sigmaUsed,
        };
        const smooth = s.kalman === 'smoother';
        const moments = s.jacobian === 'dense' ? backend.kalmanDense(model, { smooth }) : backend.kalmanDiagonal(model, { smooth });
        const { value, nonFinite } = backend.sanitize(moments.mean, s.clip);
        nonFiniteP = nonFinite;
        stepP = backend.maxAbsDiff(value, from.states);
        return value;
      });
      const [nonFinite, step] = await Promise.all([nonFiniteP, stepP]);
      resets += nonFinite;
      // Linearise at the candidate: its merit decides, and if accepted the next step reuses it.
      const lin = await linearize(candidate);
      const ok =
        s.damping.mode === 'fixed' ||
        (Number.isFinite(lin.merit) && lin.merit < s.damping.slack * from.merit && lin.merit < s.damping.ceiling * startMerit);
      if (ok) {
        remember(lin, sigmaUsed);
        if (s.damping.mode === 'adaptive' && lin.merit < from.merit) sigmaSq = Math.min(sigmaMax, sigmaSq * s.damping.grow);
        free(from);
        accepted = lin;
      } else {
        free(lin);
        if (s.damping.mode === 'adaptive') sigmaSq /= s.damping.shrink;
      }
      const info: IterationInfo = {
        iteration,
        residual: accepted.residual,
        step,
        nonFinite,
        elapsedMs: elapsedSince(p.startedAt),
        sigmaSq: sigmaUsed,
        merit: lin.merit,
        accepted: ok,
      };
      history.push(info);
      p.onIteration?.(info);
      // Converged when the accepted iterate's own residual is within tolerance, or when the step is
      // and the damping was not stronger than the process noise (σ² ≥ 1): under heavy damping a
      // small step says nothing about being at the answer. (Float32 on chaotic models has a
      // residual floor above tight tolerances; the step test covers it.)
      if (ok && nonFinite === 0 && (accepted.residual <= s.tolerance || (step <= s.tolerance && sigmaUsed >= 1))) {
        stopped = true;
        break;
      }
      // Stalled: strong damping does not bring the merit back. Restart from the best iterate with
      // σ² capped where that iterate was produced, or give up.
      if (s.damping.mode === 'adaptive' && sigmaSq < s.damping.min) {
        if (!best || restarts >= s.damping.restarts) break;
        restarts++;
        free(accepted);
        accepted = undefined;
        accepted = await linearize(backend.tidy(() => backend.affine(best!.states, 1, 0)));
        sigmaSq = s.damping.initial;
        sigmaMax = Math.max(s.damping.initial, best.sigmaSq);
      }
    }
    const states = accepted.states;
    backend.dispose([accepted.jacobian, accepted.offset]);
    if (best) backend.dispose(best.states);
    return { states, iterations: iteration, stopped, history, nonFiniteResets: resets, residual: accepted.residual };
  } catch (err) {
    free(accepted);
    if (best) backend.dispose(best.states);
    throw err;
  }
}
