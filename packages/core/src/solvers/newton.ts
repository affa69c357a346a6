import type { Tensor } from '../backend.js';
import type { JacobianKind } from '../cell.js';
import type { FusedLinearization } from '../program.js';
import type { IterationInfo, StopReason } from '../types.js';
import { type Problem, type SolverOutput, elapsedSince } from './problem.js';

/** Settings of a Newton-type (DEER / quasi-DEER) solve. */
export interface NewtonSettings {
  readonly jacobian: JacobianKind;
  readonly tolerance: number;
  readonly maxIterations: number;
  readonly clip: number;
}

/**
 * Iterations in a row whose step is within the tolerance while the residual sets no new low before
 * a run counts as stalled: the iterate has stopped moving at the scale of the tolerance but is not
 * a solution within it (a float32 rounding floor above a tight tolerance, typically on chaotic
 * models). A slowly converging run still lowers its residual and is not stopped.
 */
export const STALL_ITERATIONS = 5;

/**
 * A linearisation around an iterate `s`: the Jacobians `A_t = ∂f/∂s(s_{t−1})`, the defects
 * `d_t = f(s_{t−1}) − s_t` (minus the residuals), and the iterate's true residual `max_t ‖d_t‖∞`.
 */
interface Linearization {
  readonly jacobian: Tensor;
  readonly defect: Tensor;
  readonly residual: number;
}

/**
 * Sequences longer than this are linearised in segments on a host-memory backend (whose kernels run
 * synchronously on the JavaScript thread): each segment is one synchronous stretch of about
 * {@link SEGMENT_MS}, and the event loop (timers, abort signals) is served between segments. Fused
 * cells advance in place, dense or diagonal; op-by-op cells segment diagonal methods only (joining
 * `[B, T, D, D]` segments would double DEER's largest allocation). Device backends linearise in one
 * piece (GPU work is queued, not run on the thread, and segments would multiply its dispatches and
 * read-backs).
 */
export const LINEARIZE_SEGMENT_STEPS = 16384;

/** Wall time a segment of a linearisation aims at (its length adapts to what the last one took). */
const SEGMENT_MS = 25;

/**
 * Linearises the cell around `states` (ALGORITHMS.md §2): the Jacobians `A_t`, the defects
 * `d_t = f(s_{t−1}) − s_t`, and — from the same values — the true residual
 * `max_t ‖s_t − f(s_{t−1})‖∞`, the certificate of `states`. Optionally also `½Σ‖r_t‖²` (ELK's merit).
 * Long sequences with diagonal Jacobians are linearised in segments of
 * {@link LINEARIZE_SEGMENT_STEPS} steps when the cell offers `linearizeRange`.
 */
export async function linearizeAt(
  p: Problem,
  states: Tensor,
  jacobian: JacobianKind,
  withMerit: boolean,
): Promise<Linearization & { merit: number }> {
  const { backend, cell, fused, steps } = p;
  const long = backend.hostData !== undefined && steps > LINEARIZE_SEGMENT_STEPS;
  if (fused) return linearizeFused(p, fused.linearize(states, p.init, { kind: jacobian, sumSquares: withMerit }), long);
  const segmented = jacobian === 'diagonal' && cell.linearizeRange !== undefined && long;
  if (!segmented) {
    const part = linearizePart(p, states, p.init, withMerit, (prev) => cell.linearize(prev, jacobian));
    return settle(p, part, part);
  }
  const jacobians: Tensor[] = [];
  const defects: Tensor[] = [];
  const partials: Promise<[number, number]>[] = [];
  try {
    let length = 2048;
    for (let start = 0; start < steps; ) {
      if (start > 0) await p.pacer.tick(0);
      const n = Math.min(length, steps - start);
      const began = performance.now();
      const part = backend.tidy(() => {
        const entering = start === 0 ? p.init : backend.timeStep(states, start - 1);
        const segment = backend.slice(states, 1, start, n);
        const lin = linearizePart(p, segment, entering, withMerit, (prev) => cell.linearizeRange!(prev, start, jacobian));
        const partial = Promise.all([lin.residualP, lin.meritP]);
        partial.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
        partials.push(partial);
        return { jacobian: lin.jacobian, defect: lin.defect };
      });
      jacobians.push(part.jacobian);
      defects.push(part.defect);
      length = nextSegment(n, performance.now() - began);
      start += n;
    }
    const whole = backend.tidy(() => ({ jacobian: backend.concat(jacobians, 1), defect: backend.concat(defects, 1) }));
    backend.dispose([...jacobians, ...defects]);
    jacobians.length = 0;
    defects.length = 0;
    const residualP = Promise.all(partials).then((r) => r.reduce((m, [x]) => (Number.isNaN(m) || Number.isNaN(x) ? Number.NaN : Math.max(m, x)), 0));
    const meritP = Promise.all(partials).then((r) => r.reduce((s, [, x]) => s + x, 0));
    return settle(p, whole, { residualP, meritP });
  } catch (err) {
    backend.dispose([...jacobians, ...defects]);
    throw err;
  }
}

/** The next segment's length after one of `n` steps took `ms`: toward SEGMENT_MS, growing at most 4× at a time. */
function nextSegment(n: number, ms: number): number {
  return Math.max(256, Math.min(LINEARIZE_SEGMENT_STEPS, Math.round(n * Math.min(4, SEGMENT_MS / Math.max(ms, 1e-3)))));
}

/**
 * A fused linearisation, advanced in one go — or, on a host-memory backend with a long sequence,
 * in segments of about {@link SEGMENT_MS} with the event loop served between them (the kernel
 * writes in place: no segment tensors, no join, dense or diagonal alike).
 */
async function linearizeFused(p: Problem, run: FusedLinearization, segmented: boolean): Promise<Linearization & { merit: number }> {
  try {
    if (!segmented) run.advance(p.steps);
    else {
      let length = 2048;
      for (let done = 0; done < p.steps; ) {
        if (done > 0) await p.pacer.tick(0);
        const began = performance.now();
        const next = run.advance(length);
        length = nextSegment(next - done, performance.now() - began);
        done = next;
      }
    }
    const { residual, sumSquares } = run.finish();
    return await settle(p, run, { residualP: residual, meritP: sumSquares });
  } catch (err) {
    p.backend.dispose([run.jacobian, run.defect]);
    throw err;
  }
}

/** A linearisation of some steps, with its residual and sum of squares (NaN unless asked for) on the way. */
interface LinearizedPart {
  readonly jacobian: Tensor;
  readonly defect: Tensor;
  readonly residualP: Promise<number>;
  readonly meritP: Promise<number>;
}

/** One linearisation of `states` (`[B, n, D]`) whose first step is entered from `entering` (`[B, D]`), op by op. */
function linearizePart(
  p: Problem,
  states: Tensor,
  entering: Tensor,
  withMerit: boolean,
  linearize: (prev: Tensor) => { value: Tensor; jacobian: Tensor },
): LinearizedPart {
  const { backend } = p;
  let residualP!: Promise<number>;
  let meritP: Promise<number> = Promise.resolve(Number.NaN);
  const parts = backend.tidy(() => {
    const prev = backend.shiftTime(states, entering);
    const lin = linearize(prev);
    residualP = backend.maxAbsDiff(states, lin.value);
    if (withMerit) meritP = backend.sumSquaredDiff(states, lin.value);
    return { jacobian: lin.jacobian, defect: backend.binary('sub', lin.value, states) };
  });
  return { ...parts, residualP, meritP };
}

/** Waits for the scalar reductions of a linearisation; frees its tensors if they fail. */
async function settle(
  p: Problem,
  parts: { jacobian: Tensor; defect: Tensor },
  scalars: { residualP: Promise<number>; meritP: Promise<number> },
): Promise<Linearization & { merit: number }> {
  try {
    const [residual, sumSq] = await Promise.all([scalars.residualP, scalars.meritP]);
    return { jacobian: parts.jacobian, defect: parts.defect, residual, merit: 0.5 * sumSq };
  } catch (err) {
    p.backend.dispose([parts.jacobian, parts.defect]);
    throw err;
  }
}

/**
 * The undamped Newton correction around a linearisation: `δ_t = A_t δ_{t−1} + d_t` from `δ_0 = 0`,
 * by the backend's parallel scan; the Newton iterate is `s + δ`. Solving for the correction rather
 * than for `s + δ` itself (`s'_t = A_t s'_{t−1} + f(s_{t−1}) − A_t s_{t−1}`, the same recurrence in
 * exact arithmetic) keeps the rounding of the scan relative to the residual: where the residual is
 * zero — the exact prefix that finite convergence builds — δ is exactly zero, so on unpredictable
 * systems, whose scans amplify rounding by the growth of the Jacobian products, the iterate still
 * converges to a residual of a few roundoffs instead of stalling at `ε·‖s‖·‖A_T…A_1‖`.
 */
export function newtonCorrection(p: Problem, lin: { jacobian: Tensor; defect: Tensor }, zero: Tensor): Tensor {
  return lin.jacobian.shape.length === 4
    ? p.backend.linearScanDense(lin.jacobian, lin.defect, zero)
    : p.backend.linearScanDiagonal(lin.jacobian, lin.defect, zero);
}

/** Why an iteration that is not converged cannot go on: it repeated its iterate exactly. */
function repeatReason(nonFinite: number, clipped: number): StopReason {
  return clipped > 0 ? 'clipped' : nonFinite > 0 ? 'non-finite' : 'stalled';
}

/**
 * The stopping rules DEER and ELK share after an iteration that did not converge: an exact repeat
 * of the iterate (deterministic steps would repeat it forever), and {@link STALL_ITERATIONS} steps in
 * a row within the tolerance that set no new low of the residual.
 */
export class StallWatch {
  private best = Number.POSITIVE_INFINITY;
  private stalls = 0;
  constructor(private readonly tolerance: number) {}

  /** Why the run must stop after an iteration that left `residual` (undefined: go on, or it is done). */
  after(done: boolean, step: number, residual: number, nonFinite: number, clipped: number): StopReason | undefined {
    let reason: StopReason | undefined;
    if (!done) {
      if (step === 0) reason = repeatReason(nonFinite, clipped);
      this.stalls = step <= this.tolerance && !(residual < this.best) ? this.stalls + 1 : 0;
      if (this.stalls >= STALL_ITERATIONS) reason = 'stalled';
    }
    this.best = Math.min(this.best, residual);
    return reason;
  }
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
 * or at the iteration cap.
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
  const watch = new StallWatch(s.tolerance);
  let reason: StopReason | undefined;
  let zero: Tensor | undefined;
  try {
    zero = backend.fill(init.shape, 0, init.dtype);
    const zeroState = zero;
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
      // The Newton correction δ (ALGORITHMS.md §2 in correction form): δ_t = A_t δ_{t−1} + d_t, δ_0 = 0.
      const solved = backend.tidy(() => newtonCorrection(p, from, zeroState));
      lin = undefined;
      backend.dispose([from.jacobian, from.defect]);
      // A turn for the event loop between the scan and the rest of the iteration.
      try {
        await p.pacer.tick(iteration);
      } catch (err) {
        backend.dispose(solved);
        throw err;
      }
      let next: Tensor;
      try {
        next = backend.tidy(() => {
          // One pass: s + δ, sanitized, with its counts and the step (three [B, T, D] tensors at the peak).
          const moved = backend.applyCorrection(current, solved, s.clip);
          nonFiniteP = moved.nonFinite;
          clippedP = moved.clipped;
          stepP = moved.step;
          return moved.value;
        });
      } finally {
        backend.dispose(solved);
      }
      states = next;
      backend.dispose(current);
      // The new iterate is linearised before any read is awaited, so that its residual is read back
      // together with the counts and the step: one device read-back per iteration (WebGPU).
      const linP = linearizeAt(p, states, s.jacobian, false);
      linP.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
      let step: number;
      try {
        [nonFinite, clipped, step] = await Promise.all([nonFiniteP, clippedP, stepP]);
      } catch (err) {
        linP.then((l) => backend.dispose([l.jacobian, l.defect]), () => undefined);
        throw err;
      }
      resets += nonFinite;
      clippedTotal += clipped;
      lin = await linP;
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
      if (p.onIterate) await p.onIterate(info, states);
      const done = lin.residual <= s.tolerance && nonFinite === 0 && clipped === 0;
      reason = watch.after(done, step, lin.residual, nonFinite, clipped);
      if (reason) break;
    }
    backend.dispose([lin.jacobian, lin.defect, zero]);
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
    if (lin) backend.dispose([lin.jacobian, lin.defect]);
    backend.dispose(states);
    if (zero) backend.dispose(zero);
    throw err;
  }
}
