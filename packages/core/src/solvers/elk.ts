import type { Tensor } from '../backend.js';
import type { JacobianKind } from '../cell.js';
import type { IterationInfo, StopReason } from '../types.js';
import { linearizeAt, repeatReason } from './newton.js';
import { type Problem, type SolverOutput, elapsedSince } from './problem.js';

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

/** A linearisation of the cell around an iterate (the iterate's ownership included). */
interface Linearization {
  readonly states: Tensor;
  readonly jacobian: Tensor;
  /** `b_t = f(s_{t−1}) − A_t s_{t−1}`. */
  readonly offset: Tensor;
  /** `½ Σ ‖s_t − f(s_{t−1})‖²`. */
  readonly merit: number;
  /** `max_t ‖s_t − f(s_{t−1})‖∞`. */
  readonly residual: number;
  /** Values of `states` that were reset (NaN/±Inf) or clipped when it was made. */
  readonly dirty: number;
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
 * shrunk (more damping). An accepted candidate's linearisation is reused for the next step, so an
 * accepted step costs one linearisation and one Kalman pass, as with fixed damping.
 *
 * The run stops converged only when the accepted iterate's own true residual is within the
 * tolerance and none of its values was clipped or reset — a small step under damping proves
 * nothing. It also stops when an accepted step repeats the iterate exactly, when adaptive damping
 * has exhausted its restarts (`'stalled'`), or at the cap.
 */
export async function solveElk(p: Problem, guess: Tensor, s: ElkSettings): Promise<SolverOutput> {
  const { backend, init } = p;
  const history: IterationInfo[] = [];
  let resets = 0;
  let clippedTotal = 0;
  let accepted: Linearization | undefined;
  let startMerit = Number.POSITIVE_INFINITY;
  let sigmaSq = s.damping.mode === 'fixed' ? s.damping.sigmaSq : s.damping.initial;
  let sigmaMax = s.damping.mode === 'fixed' ? sigmaSq : s.damping.max;
  // The lowest-merit clean iterate so far (a copy), where a stalled run restarts.
  let best: { states: Tensor; merit: number; sigmaSq: number } | undefined;
  let restarts = 0;
  const remember = (lin: Linearization, sigma: number) => {
    if (s.damping.mode === 'fixed' || lin.dirty > 0 || (best && best.merit <= lin.merit)) return;
    if (best) backend.dispose(best.states);
    best = { states: backend.tidy(() => backend.affine(lin.states, 1, 0)), merit: lin.merit, sigmaSq: sigma };
  };
  let reason: StopReason | undefined;
  let iteration = 0;
  const free = (lin: Linearization | undefined) => {
    if (lin) backend.dispose([lin.states, lin.jacobian, lin.offset]);
  };

  // Takes ownership of `states`: they become the linearisation's, or are freed if it fails.
  const linearize = async (states: Tensor, dirty: number): Promise<Linearization> => {
    try {
      const lin = await linearizeAt(p, states, s.jacobian, true);
      return { states, jacobian: lin.jacobian, offset: lin.offset, merit: lin.merit, residual: lin.residual, dirty };
    } catch (err) {
      backend.dispose(states);
      throw err;
    }
  };

  try {
    accepted = await linearize(guess, 0);
    startMerit = accepted.merit;
    remember(accepted, sigmaSq);
    for (;;) {
      if (accepted.residual <= s.tolerance && accepted.dirty === 0) reason = 'converged';
      else if (iteration >= s.maxIterations) reason = 'max-iterations';
      if (reason) break;
      await p.pacer.tick(iteration);
      iteration++;
      const from: Linearization = accepted;
      const sigmaUsed = sigmaSq;
      // A candidate from the accepted iterate: the damped step, by a Kalman pass.
      let nonFiniteP!: Promise<number>;
      let clippedP!: Promise<number>;
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
        const clean = backend.sanitize(moments.mean, s.clip);
        nonFiniteP = clean.nonFinite;
        clippedP = clean.clipped;
        stepP = backend.maxAbsDiff(clean.value, from.states);
        return clean.value;
      });
      const [nonFinite, clipped, step] = await Promise.all([nonFiniteP, clippedP, stepP]);
      resets += nonFinite;
      clippedTotal += clipped;
      // Linearise at the candidate: its merit decides, and if accepted the next step reuses it.
      const lin = await linearize(candidate, nonFinite + clipped);
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
        clipped,
        elapsedMs: elapsedSince(p.startedAt),
        sigmaSq: sigmaUsed,
        merit: lin.merit,
        accepted: ok,
      };
      history.push(info);
      p.onIteration?.(info);
      const done = accepted.residual <= s.tolerance && accepted.dirty === 0;
      // An accepted exact repeat of a non-solution repeats forever: its merit did not fall, so σ²
      // stays as it was and the next candidate would be the same.
      if (!done && ok && step === 0) {
        reason = repeatReason(nonFinite, clipped);
        break;
      }
      // Stalled: strong damping does not bring the merit back. Restart from the best iterate with
      // σ² capped where that iterate was produced, or give up.
      if (!done && s.damping.mode === 'adaptive' && sigmaSq < s.damping.min) {
        if (!best || restarts >= s.damping.restarts) {
          reason = 'stalled';
          break;
        }
        restarts++;
        free(accepted);
        accepted = undefined;
        accepted = await linearize(backend.tidy(() => backend.affine(best!.states, 1, 0)), 0);
        sigmaSq = s.damping.initial;
        sigmaMax = Math.max(s.damping.initial, best.sigmaSq);
      }
    }
    const states = accepted.states;
    backend.dispose([accepted.jacobian, accepted.offset]);
    if (best) backend.dispose(best.states);
    return {
      states,
      iterations: iteration,
      reason,
      residual: accepted.residual,
      history,
      nonFiniteResets: resets,
      clippedValues: clippedTotal,
    };
  } catch (err) {
    free(accepted);
    if (best) backend.dispose(best.states);
    throw err;
  }
}
