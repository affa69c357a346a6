/**
 * `pelk eval`: evaluate a model-spec JSON (the format of the shared fixtures) with one method on one
 * backend, print a summary, optionally write the states. The sequence comes from `--inputs` (a
 * `.npy` file, `[T, I]` or `[B, T, I]`) or from the spec; a spec without data (weights only) needs
 * `--inputs`.
 *
 * Exit codes (main.ts): 0 converged; 2 bad input (checked before the run, `--out`'s folder
 * included); 3 the run finished without converging ({@link EXIT_NOT_CONVERGED}: the states and
 * the summary are still written, `reason` says why); 1 internal error.
 */
import { accessSync, constants, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import {
  type DType,
  type DeviceWork,
  type EvaluateOptions,
  type InputsLike,
  InvalidArgumentError,
  type KalmanMode,
  type LyapunovEstimate,
  type Method,
  type MethodRun,
  type StopReason,
  evaluate,
  nest,
} from '@pelk/core';
import { readModelSpec } from '@pelk/models';
import { createBackend } from '../backends.js';
import { type NpyArray, readNpy, writeNpy } from '../io/npy.js';

/** Options of {@link runEval}, as parsed from the command line. */
export interface EvalCommandOptions {
  readonly model: string;
  /** A `.npy` file with the sequence (`[T, I]` or `[B, T, I]`); it replaces the spec's data, which may then be absent. */
  readonly inputs?: string;
  readonly method: Method;
  readonly backend: string;
  readonly dtype: DType;
  readonly tol?: number;
  readonly maxIters?: number;
  readonly kalman?: KalmanMode;
  readonly sigmaSq?: number | 'adaptive';
  readonly out?: string;
  readonly json: boolean;
}

/**
 * Exit status of `pelk eval` when the run finished but did not converge (`converged: false`):
 * what was asked (`--out`, the summary) is written first. Distinct from 2 (bad input) and 1
 * (internal error).
 */
export const EXIT_NOT_CONVERGED = 3;

/** The one-line summary `--json` prints. */
export interface EvalSummary {
  method: Method;
  backend: string;
  dtype: DType;
  B?: number;
  T: number;
  D: number;
  iterations: number;
  converged: boolean;
  /** Why the evaluation stopped: `'converged'`, or why it did not (`'max-iterations'`, `'clipped'`, …). */
  reason: StopReason;
  residual: number;
  /** Finite values clipped to `±clip` over the run (`result.diagnostics.clippedValues`). */
  clippedValues: number;
  ms: number;
  /** `max |states − spec.states|` when the spec carries reference states and inputs were not overridden. */
  maxAbsErrorVsSpec?: number;
  /** Method `auto`: the methods that ran and why. */
  methods?: MethodRun[];
  /**
   * The largest Lyapunov exponent per step along the result (`result.diagnostics.lyapunov`: exponent,
   * standard error, window steps, verdict and a one-line reading); absent when its window does not fit.
   */
  lyapunov?: LyapunovEstimate;
  /**
   * Device backends (WebGPU): compute dispatches and queue submissions of the evaluation, in total
   * and per iteration (`result.diagnostics.device`).
   */
  dispatches?: { total: number; perIteration?: number };
  submissions?: { total: number; perIteration?: number };
}

function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(flag, 'a readable file', `${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
}

/**
 * Runs `pelk eval` and returns the summary (the CLI prints it).
 *
 * @example
 * ```ts
 * const summary = await runEval({ model: 'gru.json', method: 'deer', backend: 'cpu', dtype: 'float64', json: true });
 * ```
 */
export async function runEval(o: EvalCommandOptions): Promise<EvalSummary> {
  if (o.out !== undefined) checkOutPath(o.out);
  const spec = readSpecFiles(o.model, o.inputs);
  const inputs: InputsLike = spec.inputs;
  const backend = await createBackend(o.backend);
  const options: EvaluateOptions = {
    backend,
    method: o.method,
    dtype: o.dtype,
    tolerance: o.tol,
    maxIterations: o.maxIters,
    kalman: o.kalman,
    sigmaSq: o.sigmaSq,
    initialState: spec.initialState ?? undefined,
    steps: spec.cell.inputSize === 0 ? spec.steps : undefined,
    lyapunov: true,
  };
  const result = await evaluate(spec.cell, inputs, options);
  try {
    const states = await result.read();
    const shape = result.shape;
    const summary: EvalSummary = {
      method: result.method,
      backend: result.backend,
      dtype: result.dtype,
      ...(shape.length === 3 ? { B: shape[0] } : {}),
      T: shape[shape.length - 2],
      D: shape[shape.length - 1],
      iterations: result.iterations,
      converged: result.converged,
      reason: result.reason,
      residual: result.residual,
      clippedValues: result.diagnostics.clippedValues,
      ms: Math.round(result.diagnostics.elapsedMs * 1000) / 1000,
      ...(o.method === 'auto' ? { methods: [...result.methods] } : {}),
      ...(result.diagnostics.lyapunov ? { lyapunov: result.diagnostics.lyapunov } : {}),
      ...deviceWork(result.diagnostics.device),
    };
    // Only the spec's own inputs have reference states (readModelSpec drops them when --inputs replaces the data).
    if (spec.states) {
      const ref = spec.states.flat();
      let err = 0;
      for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(states[i] - ref[i]));
      summary.maxAbsErrorVsSpec = err;
    }
    if (o.out !== undefined) writeStates(o.out, states, shape);
    return summary;
  } finally {
    result.dispose();
  }
}

/**
 * Reads `--model` (a model-spec JSON) and the optional `--inputs` (`.npy`), which replaces the
 * spec's data: a spec without data (weights only) then reads; without `--inputs` the spec must
 * carry the sequence, and `readModelSpec`'s error says `--inputs` can give it.
 */
export function readSpecFiles(model: string, inputs: string | undefined): ReturnType<typeof readModelSpec> {
  let json: unknown;
  const text = readText(model, '--model');
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError('--model', 'a JSON model spec', `invalid JSON (${(err as Error).message})`);
  }
  const given = inputs === undefined ? undefined : readNpyFile(inputs, '--inputs');
  return readModelSpec(json, { inputs: given });
}

/** A `.npy` file, read and parsed; a missing or unreadable file is bad input naming `flag`. */
export function readNpyFile(path: string, flag: string): NpyArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new InvalidArgumentError(flag, 'a readable .npy file', `${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code})`);
  }
  return readNpy(bytes, flag);
}

/** `diagnostics.device` as the summary's `dispatches` and `submissions`. */
function deviceWork(device: DeviceWork | undefined): Pick<EvalSummary, 'dispatches' | 'submissions'> {
  if (!device) return {};
  const per = device.perIteration;
  return {
    dispatches: { total: device.dispatches, ...(per ? { perIteration: per.dispatches } : {}) },
    submissions: { total: device.submissions, ...(per ? { perIteration: per.submissions } : {}) },
  };
}

/**
 * Checks `--out` before anything runs: a `.npy` or `.json` file name (not an existing folder) in a
 * folder that exists, is a folder and is writable — so a long run never fails at its end for want
 * of a place to write.
 */
export function checkOutPath(out: string, extensions: readonly string[] = ['.npy', '.json']): void {
  if (!extensions.includes(extname(out))) {
    throw new InvalidArgumentError('--out', `a path ending in ${extensions.join(' or ')}`, JSON.stringify(out));
  }
  const expected = 'a file path in an existing, writable folder';
  const path = resolve(out);
  const dir = dirname(path);
  const stat = (p: string) => {
    try {
      return statSync(p);
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? 'unreadable';
    }
  };
  const d = stat(dir);
  if (typeof d === 'string') {
    const why = d === 'ENOENT' ? 'does not exist' : d === 'ENOTDIR' ? 'cannot exist: part of its path is a file' : `cannot be read (${d})`;
    throw new InvalidArgumentError('--out', expected, `${JSON.stringify(out)} (folder ${JSON.stringify(dir)} ${why})`);
  }
  if (!d.isDirectory()) {
    throw new InvalidArgumentError('--out', expected, `${JSON.stringify(out)} (${JSON.stringify(dir)} is not a folder)`);
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new InvalidArgumentError(
      '--out',
      expected,
      `${JSON.stringify(out)} (folder ${JSON.stringify(dir)} is not writable: ${(err as NodeJS.ErrnoException).code ?? 'EACCES'})`,
    );
  }
  const f = stat(path);
  if (typeof f !== 'string' && f.isDirectory()) {
    throw new InvalidArgumentError('--out', expected, `${JSON.stringify(out)} (an existing folder)`);
  }
}

/** Writes to a temporary file and renames it, so a failed run leaves no half-written file. */
function writeStates(path: string, data: ArrayLike<number>, shape: readonly number[]): void {
  writeAtomically(path, extname(path) === '.npy' ? writeNpy(data, shape) : JSON.stringify(nest(data, shape)));
}

/** Writes `body` to a temporary file beside `path` and renames it over `path`. */
export function writeAtomically(path: string, body: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, body);
  renameSync(tmp, path);
}

/** Human-readable form of the summary. */
export function formatSummary(s: EvalSummary): string {
  const lines = [
    `method ${s.method} on ${s.backend} (${s.dtype}), ${s.B ? `B=${s.B}, ` : ''}T=${s.T}, D=${s.D}`,
    `${s.converged ? 'converged' : `NOT converged (${s.reason})`} after ${s.iterations} iteration${s.iterations === 1 ? '' : 's'}, residual ${s.residual.toExponential(2)}, ${s.ms.toFixed(1)} ms`,
  ];
  if (s.clippedValues > 0) lines.push(`${s.clippedValues} value${s.clippedValues === 1 ? '' : 's'} clipped to ±clip during the run`);
  if (s.methods) for (const m of s.methods) lines.push(`  ran ${m.method} (${m.iterations} iterations): ${m.reason}`);
  if (s.lyapunov) lines.push(`predictability: ${s.lyapunov.reading} (over ${s.lyapunov.steps} steps)`);
  if (s.dispatches && s.submissions) {
    const per = s.dispatches.perIteration === undefined ? '' : ` (${s.dispatches.perIteration} and ${s.submissions.perIteration} per iteration)`;
    lines.push(`device: ${s.dispatches.total} dispatches, ${s.submissions.total} queue submissions${per}`);
  }
  if (s.maxAbsErrorVsSpec !== undefined) lines.push(`max |states − spec states| = ${s.maxAbsErrorVsSpec.toExponential(2)}`);
  return lines.join('\n');
}
