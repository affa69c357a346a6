/**
 * User-defined cells: a step function written against the backend ops, with optional analytic
 * Jacobians. Missing Jacobians are derived by batched central finite differences.
 */
import {
  type BindContext,
  type BoundCell,
  type Cell,
  type ComputeBackend,
  InvalidArgumentError,
  ShapeError,
  type Tensor,
  assertPositiveInteger,
  checkKnownKeys,
  describeValue,
} from '@pelk/core';
import { type ForwardFn, checkContext, makeBoundCell } from './bound.js';
import { readObject, sameShape, shapeText } from './host.js';

/** `f(prev, input)` on a flat batch: `prev` `[N, D]`, `input` `[N, I]` or `null` → `[N, D]`. */
export type CustomStep = (backend: ComputeBackend, prev: Tensor, input: Tensor | null) => Tensor;

/** Options of {@link customCell}. */
export interface CustomCellOptions {
  /** State size `D`. */
  readonly stateSize: number;
  /** Input size `I`; 0 for an autonomous cell. */
  readonly inputSize: number;
  /** One transition for `N` independent rows; must use only backend ops. */
  readonly step: CustomStep;
  /** Dense Jacobian `[N, D, D]`, row index first (`J[n, i, j] = ∂f_i/∂s_j`). */
  readonly jacobian?: (backend: ComputeBackend, prev: Tensor, input: Tensor | null) => Tensor;
  /** Diagonal of the Jacobian, `[N, D]`. Default: the dense one's diagonal, else finite differences. */
  readonly diagonalJacobian?: (backend: ComputeBackend, prev: Tensor, input: Tensor | null) => Tensor;
  /** Name used in messages. Default `'custom'`. */
  readonly name?: string;
  /** Receives the one-time finite-difference warning instead of `console.warn`. */
  readonly onWarning?: (message: string) => void;
}

/**
 * A cell made of user functions. `apply`/`linearize` flatten `[B, T, D]` to `[B·T, D]` and pass the
 * raw inputs reshaped to `[B·T, I]` (no projection is precomputed: the step function is opaque).
 *
 * @example
 * ```ts
 * const cell = customCell({ stateSize: 2, inputSize: 0, step: (b, s) => b.unary('tanh', s) });
 * ```
 */
export class CustomCell implements Cell {
  readonly kind = 'custom';
  readonly stateSize: number;
  readonly inputSize: number;
  readonly name: string;
  private readonly options: CustomCellOptions;
  private warned = false;

  /** Prefer {@link customCell}, which validates the options. */
  constructor(options: CustomCellOptions) {
    this.options = options;
    this.stateSize = options.stateSize;
    this.inputSize = options.inputSize;
    this.name = options.name ?? 'custom';
  }

  private warnOnce(kind: string): void {
    if (this.warned) return;
    this.warned = true;
    const message =
      `pelk: custom cell '${this.name}' has no ${kind} Jacobian; using batched central finite differences ` +
      `(2·D extra evaluations of step per state; less accurate than an analytic Jacobian).`;
    if (this.options.onWarning) this.options.onWarning(message);
    else console.warn(message);
  }

  /** Keeps a reshaped view of the inputs (nothing is precomputed). */
  bind(backend: ComputeBackend, context: BindContext): BoundCell {
    checkContext(context, this.inputSize, this.kind);
    const { stateSize: D, inputSize: I } = this;
    const { step, jacobian, diagonalJacobian } = this.options;
    const b = backend;
    const eps = b.capabilities.epsilon[context.dtype] ?? (context.dtype === 'float64' ? 2 ** -53 : 2 ** -24);
    const h0 = Math.cbrt(eps);

    const call = (fn: CustomStep, field: string, x: Tensor, u: Tensor | null, shape: number[]): Tensor => {
      const out = fn(b, x, u);
      if (!sameShape(out?.shape, shape)) {
        throw new ShapeError(`${this.name}.${field}`, `a tensor of ${shapeText(shape)}`, out?.shape ? shapeText(out.shape) : describeValue(out));
      }
      return out;
    };

    // Central differences for all D directions in ONE batched call of `step`: rows
    // x ± h_j e_j (j = 0..D−1) with h_j = eps^(1/3)·max(1, |x_j|), so the perturbed states form
    // [N, 2D, D]. Dividing by the actual spacing (x + h) − (x − h) removes rounding of h.
    const finiteDifferences = (x: Tensor, u: Tensor | null, dense: boolean): Tensor => {
      const N = x.shape[0];
      // Each stage in its own tidy, so its temporaries are freed before the next one allocates.
      const { states, spacing } = b.tidy(() => {
        const hs = b.affine(b.binary('max', b.unary('abs', x), b.fill([1], 1, x.dtype)), h0, 0);
        const e = b.diagEmbed(hs); // [N, D, D], row j = h_j e_j
        const xr = b.reshape(x, [N, 1, D]);
        const plus = b.binary('add', xr, e);
        const minus = b.binary('sub', xr, e);
        const spacing = b.binary('sub', b.diagPart(plus), b.diagPart(minus)); // [N, D]
        return { states: b.reshape(b.concat([plus, minus], 1), [N * 2 * D, D]), spacing };
      });
      const inputs = u
        ? b.tidy(() => b.reshape(b.binary('add', b.reshape(u, [N, 1, I]), b.fill([1, 2 * D, 1], 0, u.dtype)), [N * 2 * D, I]))
        : null;
      const f = b.tidy(() => b.reshape(call(step, 'step', states, inputs, [N * 2 * D, D]), [N, 2 * D, D]));
      b.dispose(inputs ? [states, inputs] : [states]);
      const diff = b.tidy(() => b.binary('sub', b.slice(f, 1, 0, D), b.slice(f, 1, D, D))); // [n, j, i] = f_i(x + h_j e_j) − f_i(x − h_j e_j)
      b.dispose(f);
      if (!dense) return b.tidy(() => b.binary('div', b.diagPart(diff), spacing));
      const byColumn = b.tidy(() => b.binary('div', diff, b.reshape(spacing, [N, D, 1]))); // [n, j, i] = ∂f_i/∂x_j
      b.dispose(diff);
      return b.transpose(byColumn); // row index first
    };

    const forward: ForwardFn = (prev, drive, want) => {
      // Flatten any leading shape to N rows: the user functions see [N, D] and [N, I].
      const lead = prev.shape.slice(0, -1);
      const N = prev.size / D;
      const x = b.reshape(prev, [N, D]);
      const u = drive ? b.reshape(drive, [N, I]) : null;
      const value = b.reshape(call(step, 'step', x, u, [N, D]), prev.shape);
      if (want === 'value') return { value };
      let j: Tensor;
      if (want === 'dense') {
        if (jacobian) j = call(jacobian, 'jacobian', x, u, [N, D, D]);
        else {
          this.warnOnce('dense');
          j = finiteDifferences(x, u, true);
        }
        return { value, jacobian: b.reshape(j, [...lead, D, D]) };
      }
      if (diagonalJacobian) j = call(diagonalJacobian, 'diagonalJacobian', x, u, [N, D]);
      else if (jacobian) j = b.diagPart(call(jacobian, 'jacobian', x, u, [N, D, D]));
      else {
        this.warnOnce('diagonal');
        j = finiteDifferences(x, u, false);
      }
      return { value, jacobian: b.reshape(j, [...lead, D]) };
    };
    return makeBoundCell({ backend, kind: this.kind, stateSize: D, context, drive: context.inputs, owned: [], forward });
  }
}

/** The keys of {@link CustomCellOptions}. */
const CUSTOM_OPTION_KEYS = ['stateSize', 'inputSize', 'step', 'jacobian', 'diagonalJacobian', 'name', 'onWarning'] as const;

/**
 * Builds a cell from a step function written with backend ops, so it runs on every backend.
 * Give `jacobian` (and optionally `diagonalJacobian`) for exact DEER / quasi-DEER linearisations;
 * without them they are approximated by batched central finite differences, with a one-time warning.
 *
 * @example
 * ```ts
 * import { customCell } from '@pelk/models';
 * // s' = tanh(0.9·s + u), with its Jacobian diag(1 − s'²)
 * const step = (b, s, u) => b.unary('tanh', b.binary('add', b.affine(s, 0.9, 0), u!));
 * const cell = customCell({
 *   stateSize: 2,
 *   inputSize: 2,
 *   step,
 *   diagonalJacobian: (b, s, u) => b.affine(b.unary('square', step(b, s, u)), -0.9, 0.9),
 *   jacobian: (b, s, u) => b.diagEmbed(b.affine(b.unary('square', step(b, s, u)), -0.9, 0.9)),
 * });
 * ```
 */
export function customCell(options: CustomCellOptions): CustomCell {
  const o = readObject(options, 'options');
  checkKnownKeys(o, CUSTOM_OPTION_KEYS, 'options');
  const stateSize = assertPositiveInteger(o.stateSize, 'options.stateSize');
  const inputSize = o.inputSize ?? 0;
  if (typeof inputSize !== 'number' || !Number.isInteger(inputSize) || inputSize < 0) {
    throw new InvalidArgumentError('options.inputSize', 'an integer ≥ 0', describeValue(inputSize));
  }
  for (const name of ['step', 'jacobian', 'diagonalJacobian', 'onWarning'] as const) {
    const fn = o[name];
    if ((name === 'step' || fn !== undefined) && typeof fn !== 'function') {
      throw new InvalidArgumentError(`options.${name}`, name === 'step' ? 'a function' : 'a function or undefined', describeValue(fn));
    }
  }
  if (o.name !== undefined && typeof o.name !== 'string') {
    throw new InvalidArgumentError('options.name', 'a string', describeValue(o.name));
  }
  return new CustomCell({ ...options, stateSize, inputSize });
}
