/**
 * `pelk grad`: the gradient of `L = Σ C ⊙ states` for a model-spec JSON — with respect to every
 * weight (by the spec's names), the inputs and the initial state — by `grad` of @pelk/core: the
 * forward solve with one method, then the adjoint (reverse) solve at its trajectory. Writes a JSON
 * file; `--json` prints a one-line summary with both solves' iterations and residuals.
 *
 * Exit codes (main.ts): 0 both solves certified; 2 bad input (the cotangent's shape and values,
 * `--out`, a forward solve that did not converge without `--allow-non-converged`); 3 a solve did
 * not converge — the adjoint, or the forward one allowed with `--allow-non-converged` (the file
 * and summary are still written); 1 internal error.
 */
import {
  type AdjointMethod,
  type DType,
  type GradResult,
  grad,
  InvalidArgumentError,
  type KalmanMode,
  type Method,
  nest,
  type StopReason,
} from '@pelk/core';
import { createBackend } from '../backends.js';
import { checkOutPath, readNpyFile, readSpecFiles, writeAtomically } from './eval.js';

/** Options of {@link runGrad}, as parsed from the command line. */
export interface GradCommandOptions {
  readonly model: string;
  /** `.npy` inputs replacing the spec's data (`[T, I]` or `[B, T, I]`). */
  readonly inputs?: string;
  /** `.npy` cotangent `C`, shaped as the states: `[T, D]` or `[B, T, D]`. */
  readonly cotangent: string;
  readonly method: Method;
  readonly adjoint: AdjointMethod;
  readonly backend: string;
  readonly dtype: DType;
  readonly tol?: number;
  readonly maxIters?: number;
  readonly adjointTol?: number;
  readonly kalman?: KalmanMode;
  readonly allowNonConverged: boolean;
  readonly out: string;
  readonly json: boolean;
}

/** The one-line summary `--json` prints. */
export interface GradSummary {
  backend: string;
  dtype: DType;
  B?: number;
  T: number;
  D: number;
  loss: number;
  forward: { method: Method; iterations: number; converged: boolean; reason: StopReason; residual: number; ms: number };
  adjoint: { method: string; why: string; fused: boolean; iterations: number; converged: boolean; reason: StopReason; residual: number; tolerance: number; ms: number };
  /** `max |∂L/∂θ|` per parameter name. */
  parameters: Record<string, number>;
  out: string;
}

/** What the `--out` file holds (nested arrays in the shapes of the spec's weights, inputs and initial state). */
export interface GradFile {
  loss: number;
  parameters: Record<string, unknown>;
  inputs: unknown;
  initialState: unknown;
  forward: GradSummary['forward'];
  adjoint: GradSummary['adjoint'];
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000;

/** Nested arrays of `data` in `shape` (a scalar for shape `[]`). */
function nested(data: Float64Array, shape: readonly number[]): unknown {
  if (shape.length === 0) return data[0];
  if (shape.length === 1) return Array.from(data);
  const [lead, ...rest] = shape;
  const size = rest.reduce((a, b) => a * b, 1);
  if (rest.length === 1) return nest(data, [lead, rest[0]]);
  return Array.from({ length: lead }, (_, k) => nested(data.subarray(k * size, (k + 1) * size), rest));
}

/**
 * Runs `pelk grad` and returns the summary (the CLI prints it); writes `--out`.
 *
 * @example
 * ```ts
 * const s = await runGrad({ model: 'gru.json', cotangent: 'c.npy', method: 'deer', adjoint: 'auto', backend: 'cpu', dtype: 'float64', allowNonConverged: false, out: 'g.json', json: true });
 * ```
 */
export async function runGrad(o: GradCommandOptions): Promise<GradSummary> {
  checkOutPath(o.out, ['.json']);
  const spec = readSpecFiles(o.model, o.inputs);
  const cotangent = readNpyFile(o.cotangent, '--cotangent');
  const backend = await createBackend(o.backend);
  let g: GradResult;
  try {
    g = await grad(spec.cell, spec.inputs, { data: cotangent.data, shape: cotangent.shape }, {
      backend,
      method: o.method,
      dtype: o.dtype,
      tolerance: o.tol,
      maxIterations: o.maxIters,
      kalman: o.kalman,
      adjoint: o.adjoint,
      adjointTolerance: o.adjointTol,
      allowNonConverged: o.allowNonConverged,
      initialState: spec.initialState ?? undefined,
      steps: spec.cell.inputSize === 0 ? spec.steps : undefined,
      lyapunov: false,
    });
  } catch (err) {
    // The cotangent comes from --cotangent: name the flag, as the other files' errors do.
    if (err instanceof InvalidArgumentError && err.field === 'cotangent') throw new InvalidArgumentError('--cotangent', err.expected, err.received, err.code);
    throw err;
  }
  const shape = g.states.shape;
  const forward = {
    method: g.forward.method,
    iterations: g.forward.iterations,
    converged: g.forward.converged,
    reason: g.forward.reason,
    residual: g.forward.residual,
    ms: round3(g.forward.elapsedMs),
  };
  const adjoint = {
    method: g.adjoint.method,
    why: g.adjoint.why,
    fused: g.adjoint.fused,
    iterations: g.adjoint.iterations,
    converged: g.adjoint.converged,
    reason: g.adjoint.reason,
    residual: g.adjoint.residual,
    tolerance: g.adjoint.tolerance,
    ms: round3(g.adjoint.elapsedMs),
  };
  const file: GradFile = {
    loss: g.loss,
    parameters: Object.fromEntries(Object.entries(g.parameters).map(([name, p]) => [name, nested(p.data, p.shape)])),
    inputs: g.inputs && nested(g.inputs.data, g.inputs.shape),
    initialState: nested(g.initialState.data, g.initialState.shape),
    forward,
    adjoint,
  };
  writeAtomically(o.out, JSON.stringify(file));
  const maxAbs = (a: Float64Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  return {
    backend: g.backend,
    dtype: g.dtype,
    ...(shape.length === 3 ? { B: shape[0] } : {}),
    T: shape[shape.length - 2],
    D: shape[shape.length - 1],
    loss: g.loss,
    forward,
    adjoint,
    parameters: Object.fromEntries(Object.entries(g.parameters).map(([name, p]) => [name, maxAbs(p.data)])),
    out: o.out,
  };
}

/** Human-readable form of the summary. */
export function formatGradSummary(s: GradSummary): string {
  const f = s.forward;
  const a = s.adjoint;
  const lines = [
    `L = Σ C ⊙ states = ${s.loss.toPrecision(8)} on ${s.backend} (${s.dtype}), ${s.B ? `B=${s.B}, ` : ''}T=${s.T}, D=${s.D}`,
    `forward ${f.method}: ${f.converged ? 'converged' : `NOT converged (${f.reason})`} after ${f.iterations} iteration${f.iterations === 1 ? '' : 's'}, residual ${f.residual.toExponential(2)}, ${f.ms.toFixed(1)} ms`,
    `adjoint ${a.method}${a.fused ? ' (fused kernels)' : ''} (${a.why}): ${a.converged ? 'converged' : `NOT converged (${a.reason})`} after ${a.iterations} iteration${a.iterations === 1 ? '' : 's'}, relative residual ${a.residual.toExponential(2)}, ${a.ms.toFixed(1)} ms`,
    ...Object.entries(s.parameters).map(([name, m]) => `  max |∂L/∂${name}| = ${m.toExponential(3)}`),
    `wrote ${s.out}`,
  ];
  return lines.join('\n');
}
