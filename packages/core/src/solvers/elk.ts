import type { Tensor } from '../backend.js';
import type { JacobianKind } from '../cell.js';
import type { IterationInfo, StopReason } from '../types.js';
import { STALL_ITERATIONS, StallWatch, linearizeAt, newtonCorrection } from './newton.js';
import { type Problem, type SolverOutput, elapsedSince } from './problem.js';

/** How ELK damps its steps. */
export type ElkDamping =
  | { readonly mode: 'fixed'; readonly sigmaSq: number }
  | {
      /**
       * Starts undamped (σ² = ∞: the DEER / quasi-DEER step) and damps only once a step fails; see
       * {@link solveElk}.
       */
      readonly mode: 'adaptive';
      /** σ² of the first damped step, after the first rejected undamped one. */
      readonly initialSigmaSq: number;
      /** σ² is multiplied by `grow` after an accepted step that lowered the merit… */
      readonly grow: number;
      /** …and divided by `shrink` after a rejected one. */
      readonly shrink: number;
      /** σ² never grows beyond this… */
      readonly maxSigmaSq: number;
      /** …unless the steps then become undamped again (σ² = ∞). */
      readonly undampAboveMax: boolean;
      /** σ² never goes below this (the damped step is then nearly the Jacobi step). */
      readonly minSigmaSq: number;
      /**
       * A candidate is accepted while its merit stays below `slack ×` the current iterate's: Newton
       * steps often raise the merit for an iteration or two on their way to the solution (DEER
       * converges regardless), while the blow-ups of under-damped steps jump by orders of magnitude.
       */
      readonly slack: number;
      /**
       * …and below `ceiling ×` the initial guess's merit: accepted steps that each raise the merit
       * less than `slack`-fold must not compound into a blow-up.
       */
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
  /** `d_t = f(s_{t−1}) − s_t`, minus the residual. */
  readonly defect: Tensor;
  /** `½ Σ ‖s_t − f(s_{t−1})‖²`. */
  readonly merit: number;
  /** `max_t ‖s_t − f(s_{t−1})‖∞`. */
  readonly residual: number;
  /** Values of `states` that were reset (NaN/±Inf) or clipped when it was made. */
  readonly dirty: number;
}

/**
 * Whether adaptive damping accepts a candidate (its linearisation `lin`) made from an iterate of merit
 * `current`. Its merit must be finite, and an undamped (Newton) step must be clean — nothing
 * clipped or reset, the mark of an iterate that overflows. A step that does not lower the merit must
 * keep it below `ceiling ×` the initial guess's (so that increases cannot compound into a blow-up);
 * an undamped step may otherwise raise it — Newton's iterates often do for a few iterations on their
 * way to the solution, and DEER converges regardless — while a damped one must stay below `slack ×`
 * the current merit.
 */
function acceptable(
  damping: Extract<ElkDamping, { mode: 'adaptive' }>,
  lin: Linearization,
  current: number,
  start: number,
  undamped: boolean,
): boolean {
  if (!Number.isFinite(lin.merit)) return false;
  if (undamped && lin.dirty > 0) return false;
  if (lin.merit <= current) return true;
  return lin.merit < damping.ceiling * start && (undamped || lin.merit < damping.slack * current);
}

/**
 * ELK (dense Jacobians) and quasi-ELK (diagonal), ALGORITHMS.md §5–6, in the form that keeps DEER's
 * finite convergence. Each iteration linearises the cell around the current iterate `s` and
 * computes a candidate:
 * - **undamped** (σ² = ∞): the Newton step `s + δ`, `δ_t = A_t δ_{t−1} + d_t` by a parallel scan —
 *   exactly DEER's (quasi-DEER's) step;
 * - **damped** (finite σ²): the Levenberg–Marquardt step `s + δ`, δ the mean of a parallel Kalman
 *   filter (or smoother) with dynamics `δ_t = A_t δ_{t−1} + d_t + w_t`, `w_t ~ N(0, I)`, and
 *   pseudo-observations `0 = δ_t + v_t`, `v_t ~ N(0, σ²I)` (the current iterate, with variance σ²
 *   = 1/λ), followed by one **Jacobi sweep** `s'_t = f(s̃_{t−1})` of that step `s̃`.
 *
 * **Finite convergence** (Kalman filter): say the first `p` states of `s` are exact (`d_t = 0` for
 * t ≤ p). The Newton step keeps them (δ_t = 0 there) and makes state p+1 exact (δ_{p+1} = d_{p+1}).
 * The filter keeps them too: its predicted mean for δ_t is `A_t·0 + 0 = 0`, which agrees with the
 * observation 0, so the filtered mean stays 0 whatever σ²; state p+1 is only partly corrected
 * (the filter mean blends the prediction `d_{p+1}` with the observation 0) — and the Jacobi sweep
 * finishes it: `s'_{p+1} = f(s̃_p) = f(s_p)` is exact, and so are `s'_t = f(s_{t−1})`, t ≤ p. A rejected
 * candidate (below) is replaced by the Jacobi step `s + d` of the current iterate, which also extends
 * the exact prefix by one. So every iteration extends the exact prefix by at least one step, and
 * after at most T iterations, from any guess, the iterate is the sequential trajectory — as DEER's
 * (ALGORITHMS.md §4, Prop. 1). The smoother's step mixes later observations into earlier states and
 * has no such guarantee.
 *
 * **Adaptive damping** (a trust region that starts as Newton): the first step is undamped. A candidate
 * is rejected when its merit `½Σ‖r_t‖²` is non-finite, when it is undamped and has clipped or reset
 * values, or when it raises the merit above `ceiling ×` the initial guess's or — a damped one — above
 * `slack ×` the current one (see `acceptable`); a rejected candidate's
 * Jacobi step is taken instead and σ² falls (an undamped step is followed by σ² = `initialSigmaSq`,
 * a damped one by σ²/`shrink`). After an accepted step that lowered the merit σ² grows ×`grow`, up
 * to `maxSigmaSq`, above which ELK's steps are undamped again (`undampAboveMax`; quasi-ELK stays
 * damped: its diagonal linearisation, once it has failed, is too poor a model to retry undamped). Where Newton's steps work — every problem DEER
 * solves cleanly — no candidate is rejected and the run is DEER's, iteration for iteration.
 *
 * The run stops converged only when the accepted iterate's own true residual is within the tolerance
 * and none of its values was clipped or reset. It also stops when an accepted step repeats the iterate
 * exactly, when the residual stalls (as DEER's, {@link STALL_ITERATIONS}), or at the cap.
 */
export async function solveElk(p: Problem, guess: Tensor, s: ElkSettings): Promise<SolverOutput> {
  const { backend, init } = p;
  const history: IterationInfo[] = [];
  const adaptive = s.damping.mode === 'adaptive' ? s.damping : undefined;
  let sigmaSq = s.damping.mode === 'fixed' ? s.damping.sigmaSq : Number.POSITIVE_INFINITY;
  let resets = 0;
  let clippedTotal = 0;
  let accepted: Linearization | undefined;
  let reason: StopReason | undefined;
  let iteration = 0;
  const watch = new StallWatch(s.tolerance);
  const dense = s.jacobian === 'dense';
  let zero!: Tensor;
  // The damped steps' pseudo-observations (δ = 0: the current iterate), made at the first damped step.
  let observation: Tensor | undefined;
  const free = (lin: Linearization | undefined) => {
    if (lin) backend.dispose([lin.states, lin.jacobian, lin.defect]);
  };
  /**
   * Linearises `states` (taking ownership: they become the linearisation's, or are freed on failure)
   * while the counts of how they were made (`[nonFinite, clipped, step]`) are read back: the
   * linearisation is queued before any read is awaited, so that its residual and merit come back in
   * the same device read-back as the counts — one per iteration on a GPU.
   */
  const linearize = async (states: Tensor, counts: Promise<number[]>): Promise<{ lin: Linearization; counts: number[] }> => {
    const linP = linearizeAt(p, states, s.jacobian, true);
    linP.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    let read: number[];
    try {
      read = await counts;
    } catch (err) {
      linP.then((l) => backend.dispose([l.jacobian, l.defect]), () => undefined);
      backend.dispose(states);
      throw err;
    }
    try {
      const l = await linP;
      return { lin: { states, jacobian: l.jacobian, defect: l.defect, merit: l.merit, residual: l.residual, dirty: read[0] + read[1] }, counts: read };
    } catch (err) {
      backend.dispose(states);
      throw err;
    }
  };
  // The candidate from `from` with observation variance σ² (∞: the Newton step), sanitised.
  const candidateFrom = (from: Linearization, sigma: number) => {
    let delta: Tensor;
    if (sigma !== Number.POSITIVE_INFINITY && !observation) observation = backend.keep(backend.fill(from.defect.shape, 0, from.defect.dtype));
    if (sigma === Number.POSITIVE_INFINITY) {
      delta = newtonCorrection(p, from, zero);
    } else {
      const model = {
        transition: from.jacobian,
        bias: from.defect,
        observation: observation!,
        init: zero,
        processVariance: 1,
        observationVariance: sigma,
      };
      const smooth = s.kalman === 'smoother';
      delta = (dense ? backend.kalmanDense(model, { smooth }) : backend.kalmanDiagonal(model, { smooth })).mean;
    }
    let next = backend.binary('add', from.states, delta);
    if (sigma === Number.POSITIVE_INFINITY) return backend.sanitize(next, s.clip);
    // The Jacobi sweep that completes the damped step at the front of the exact prefix; values reset
    // or clipped before it count with those after it.
    const before = backend.sanitize(next, s.clip);
    next = (p.fused ?? p.cell).apply(backend.shiftTime(before.value, init));
    const after = backend.sanitize(next, s.clip);
    const sum = (a: Promise<number>, b: Promise<number>) => Promise.all([a, b]).then(([x, y]) => x + y);
    return { value: after.value, nonFinite: sum(before.nonFinite, after.nonFinite), clipped: sum(before.clipped, after.clipped) };
  };

  try {
    zero = backend.fill(init.shape, 0, init.dtype);
    accepted = (await linearize(guess, Promise.resolve([0, 0, 0]))).lin;
    const startMerit = accepted.merit;
    for (;;) {
      if (accepted.residual <= s.tolerance && accepted.dirty === 0) reason = 'converged';
      else if (iteration >= s.maxIterations) reason = 'max-iterations';
      if (reason) break;
      await p.pacer.tick(iteration);
      iteration++;
      const from: Linearization = accepted;
      const sigmaUsed = sigmaSq;
      let nonFiniteP!: Promise<number>;
      let clippedP!: Promise<number>;
      let stepP!: Promise<number>;
      const candidate = backend.tidy(() => {
        const clean = candidateFrom(from, sigmaUsed);
        nonFiniteP = clean.nonFinite;
        clippedP = clean.clipped;
        stepP = backend.maxAbsDiff(clean.value, from.states);
        return clean.value;
      });
      // Linearise at the candidate: its merit decides, and if accepted the next step reuses it.
      const made = await linearize(candidate, Promise.all([nonFiniteP, clippedP, stepP]));
      const lin = made.lin;
      let [nonFinite, clipped, step] = made.counts;
      const ok = !adaptive || acceptable(adaptive, lin, from.merit, startMerit, sigmaUsed === Number.POSITIVE_INFINITY);
      if (ok) {
        free(from);
        accepted = lin;
        if (adaptive && sigmaUsed !== Number.POSITIVE_INFINITY) {
          // A step that lowered the merit earns less damping (ELK: undamped again above `maxSigmaSq`).
          const grown = sigmaUsed * adaptive.grow;
          if (lin.merit < from.merit) sigmaSq = grown <= adaptive.maxSigmaSq ? grown : adaptive.undampAboveMax ? Number.POSITIVE_INFINITY : adaptive.maxSigmaSq;
        }
      } else if (adaptive) {
        free(lin);
        sigmaSq = sigmaUsed === Number.POSITIVE_INFINITY ? adaptive.initialSigmaSq : Math.max(adaptive.minSigmaSq, sigmaUsed / adaptive.shrink);
        // The Jacobi step `s + d` (`s'_t = f(s_{t−1})`) instead: it extends the exact prefix by one.
        let jacobiNonFiniteP!: Promise<number>;
        let jacobiClippedP!: Promise<number>;
        let jacobiStepP!: Promise<number>;
        const jacobi = backend.tidy(() => {
          const clean = backend.sanitize(backend.binary('add', from.states, from.defect), s.clip);
          jacobiNonFiniteP = clean.nonFinite;
          jacobiClippedP = clean.clipped;
          jacobiStepP = backend.maxAbsDiff(clean.value, from.states);
          return clean.value;
        });
        free(from);
        accepted = undefined;
        const jacobiMade = await linearize(jacobi, Promise.all([jacobiNonFiniteP, jacobiClippedP, jacobiStepP]));
        accepted = jacobiMade.lin;
        [nonFinite, clipped, step] = jacobiMade.counts;
      }
      resets += nonFinite;
      clippedTotal += clipped;
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
      if (p.onIterate) await p.onIterate(info, accepted.states);
      const done = accepted.residual <= s.tolerance && accepted.dirty === 0;
      reason = watch.after(done, step, accepted.residual, nonFinite, clipped);
      if (reason) break;
    }
    const states = accepted.states;
    backend.dispose([accepted.jacobian, accepted.defect, zero]);
    if (observation) backend.dispose(observation);
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
    if (accepted) free(accepted);
    else backend.dispose(guess); // the first linearisation never took ownership of it
    if (zero) backend.dispose(zero);
    if (observation) backend.dispose(observation);
    throw err;
  }
}
