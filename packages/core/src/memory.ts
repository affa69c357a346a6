/**
 * How much memory an evaluation needs: the estimate core refuses problems with before anything is
 * allocated (`evaluate` compares it with `BackendCapabilities.limits.maxTotalBytes`), written as an
 * upper bound of what the CPU backend measures (`memory().peakBytes`: live tensors plus the scratch
 * space of its primitives), and checked against those measurements by the conformance suite.
 *
 * Measurements behind the coefficients (CPU backend, `apps/bench/src/commands/memory-probe.ts`,
 * 3 iterations, every method × GRU, LSTM, Elman, Lorenz-96, AR-GRU, custom (analytic and finite-
 * difference Jacobians), B·T from 256 to 2048, D = 8…64, float64 and float32). In values of the
 * dtype per `N·D` (`N = B·T`) and per `N·D²`, the largest seen:
 *
 * | method      | per N·D (incl. the input projection, ≤ 4D wide) | per N·D²                                  |
 * |-------------|--------------------------------------------------|-------------------------------------------|
 * | sequential  | 7.6 (GRU: states, projection 3D, inputs)         | 0                                         |
 * | quasi-deer  | 16.6 (GRU; LSTM 12.6, Elman 9.4)                 | 0 (Lorenz-96 1.3, custom FD 13.4 with D ≤ 8) |
 * | quasi-elk   | 20.6 (GRU)                                       | 0 (as quasi-deer for Lorenz-96 / custom)  |
 * | deer        | ≈ 10 + Jacobian build                            | 2.2 (GRU/LSTM, D = 64; Lorenz-96 ≤ 5)     |
 * | elk         | ≈ 10                                             | 2 + 4 float64 Kalman work arrays (48 bytes/N·D² in float64, 40 in float32) |
 *
 * The estimate budgets, in bytes (`e` = 8 for float64, 4 for float32):
 *
 *     e·N·(V_m·D + 2·I)                      every method (V: sequential 10, quasi-deer 20, quasi-elk 24, deer 16, elk 20)
 *   + N·D²·M_m                               M: deer 3e, elk 3e + 32 (the CPU Kalman work is float64 whatever the dtype)
 *   + N·D²·e·K                               cells whose diagonal Jacobian goes through the D×D one
 *                                            (lorenz96: K = 6; custom: K = 16, finite differences)
 *   + e·(16·D² + 8·D·I) + 64 KiB             weights and small work arrays
 *
 *   + DEER's estimate on the Lyapunov window   every method but sequential (`lyapunov`): `lyapunovWindow`
 *
 * `auto` budgets quasi-DEER and quasi-ELK (it runs dense ELK only after re-checking that it fits).
 * A custom cell's own `step` / `jacobian` functions may hold more than the few `[N, D]`
 * temporaries assumed here; the estimate covers pelk's finite-difference Jacobians around a step
 * function of a handful of ops.
 */
import type { DType } from './backend.js';
import { lyapunovWindow } from './lyapunov-window.js';
import type { Method } from './types.js';

/** What {@link estimateEvaluationBytes} needs to know about an evaluation. */
export interface EvaluationSize {
  readonly method: Method;
  /** `B`. */
  readonly batch: number;
  /** `T`. */
  readonly steps: number;
  /** `D`. */
  readonly stateSize: number;
  /** `I` (0 for autonomous cells). */
  readonly inputSize: number;
  readonly dtype: DType;
  /**
   * The cell's `kind` (`'gru'`, `'lorenz96'`, `'custom'`, …). Cells whose diagonal Jacobian is read
   * off the dense one (`'lorenz96'`) or computed by finite differences (`'custom'`) budget a D×D
   * term for the diagonal methods too; unknown kinds are budgeted like `'custom'`.
   */
  readonly cellKind?: string;
  /**
   * Whether the Lyapunov exponent is estimated (`options.lyapunov`; default: every method but
   * sequential): the dense linearisation of its window is budgeted like DEER's on that window.
   */
  readonly lyapunov?: boolean;
}

/** Bytes per element of a dtype. */
export function bytesPerElement(dtype: DType): number {
  return dtype === 'float64' ? 8 : 4;
}

/** Values per `N·D` (state-sized rows, the input projection included) by method. */
const VECTOR: Readonly<Record<Method, number>> = {
  sequential: 10,
  'quasi-deer': 20,
  'quasi-elk': 24,
  deer: 16,
  elk: 20,
  auto: 24,
};

/**
 * Values per `N·D²` a cell kind's linearisation holds beyond the solver's own, for the dense and the
 * diagonal methods. GRU, LSTM and Elman build their dense Jacobian in one tensor and their diagonal
 * one without any D×D tensor; `ar` concatenates blocks and projects its emitted value inside every
 * linearisation (8 more values per `N·D`); Lorenz-96 chains RK4 stage Jacobians (and
 * reads its diagonal off the dense one); custom cells without an analytic Jacobian use finite
 * differences over `[N, 2D, D]` perturbed states. Unknown kinds are budgeted like `'custom'`.
 */
function kindExtra(kind: string | undefined): { readonly dense: number; readonly diagonal: number; readonly vector: number } {
  switch (kind) {
    case 'gru':
    case 'lstm':
    case 'elman':
      return { dense: 0, diagonal: 0, vector: 0 };
    case 'ar':
      return { dense: 2, diagonal: 0, vector: 8 };
    case 'lorenz96':
      return { dense: 6, diagonal: 6, vector: 0 };
    default:
      return { dense: 16, diagonal: 16, vector: 8 };
  }
}

/**
 * An upper bound, in bytes, of the memory one evaluation holds at once (tensors and primitive
 * scratch space) — the figure core refuses problems with, compared with
 * `BackendCapabilities.limits.maxTotalBytes`. See the module documentation for the measurements
 * behind it.
 *
 * @example
 * ```ts
 * import { estimateEvaluationBytes } from '@pelk/core';
 * const bytes = estimateEvaluationBytes({ method: 'quasi-deer', batch: 1, steps: 1e6, stateSize: 64, inputSize: 1, dtype: 'float32' });
 * console.log((bytes / 2 ** 30).toFixed(1), 'GiB'); // ≈ 4.8
 * ```
 */
export function estimateEvaluationBytes(s: EvaluationSize): number {
  const { method } = s;
  const B = s.batch;
  const T = s.steps;
  const D = s.stateSize;
  const I = s.inputSize;
  const e = bytesPerElement(s.dtype);
  const N = B * T;
  let bytes = e * N * (VECTOR[method] * D + 2 * I);
  if (method === 'deer') bytes += N * D * D * 3 * e;
  else if (method === 'elk') bytes += N * D * D * (3 * e + 32);
  if (method !== 'sequential') {
    const extra = kindExtra(s.cellKind);
    bytes += N * D * D * e * (method === 'deer' || method === 'elk' ? extra.dense : extra.diagonal) + N * D * e * extra.vector;
  }
  bytes += e * (16 * D * D + 8 * D * I) + 65536;
  const window = (s.lyapunov ?? method !== 'sequential') ? lyapunovWindow(B, T, D) : undefined;
  if (window) bytes += estimateEvaluationBytes({ ...s, method: 'deer', batch: window.rows, steps: window.steps, lyapunov: false });
  return bytes;
}
