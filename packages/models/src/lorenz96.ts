/**
 * Lorenz-96, discretised: one RK4 (or Euler) step of
 * `dx_i/dt = (x_{i+1} − x_{i−2}) x_{i−1} − x_i + F` (indices cyclic) per transition.
 * Autonomous: no inputs (`inputSize = 0`).
 */
import {
  type BindContext,
  type BoundCell,
  type ComputeBackend,
  type DType,
  type HostArray,
  type HostVjp,
  InvalidArgumentError,
  type Tensor,
  assertPositiveInteger,
  assertPositiveNumber,
  checkKnownKeys,
  describeValue,
} from '@pelk/core';
import { type ForwardFn, checkContext, makeBoundCell, rowScaledSum, sum, uploadOwned } from './bound.js';
import { readObject } from './host.js';
import type { Lorenz96Spec, ModelCell } from './types.js';

/** Options of {@link lorenz96}. */
export interface Lorenz96Options {
  /** State size `D` (≥ 1; the dynamics are the usual ones from D = 4). */
  readonly dimension: number;
  /** Forcing `F`. Default 8 (chaotic). */
  readonly forcing?: number;
  /** Time step. Default 0.01. */
  readonly dt?: number;
  /** Default `'rk4'`. */
  readonly integrator?: 'rk4' | 'euler';
}

/** `D×D` shift matrix `P_s` with `(P_s x)_i = x_{(i+s) mod D}`, accumulated into `out` with `sign`. */
function addShift(out: Float64Array, D: number, s: number, sign: number): void {
  for (let i = 0; i < D; i++) out[i * D + (((i + s) % D) + D) % D] += sign;
}

/**
 * A Lorenz-96 cell. Create one with {@link lorenz96}.
 *
 * @example
 * ```ts
 * const cell = lorenz96({ dimension: 5, forcing: 8, dt: 0.01 });
 * const bound = cell.bind(backend, { dtype: 'float64', inputs: null, batch: 1, steps: 400 });
 * ```
 */
export class Lorenz96Cell implements ModelCell {
  readonly kind = 'lorenz96';
  readonly inputSize = 0;
  readonly stateSize: number;
  readonly forcing: number;
  readonly dt: number;
  readonly integrator: 'rk4' | 'euler';

  /** Prefer {@link lorenz96}, which validates the options. */
  constructor(dimension: number, forcing: number, dt: number, integrator: 'rk4' | 'euler') {
    this.stateSize = dimension;
    this.forcing = forcing;
    this.dt = dt;
    this.integrator = integrator;
  }

  /** The spec `cell` object. */
  toSpec(): Lorenz96Spec {
    return { type: 'lorenz96', dimension: this.stateSize, forcing: this.forcing, dt: this.dt, integrator: this.integrator };
  }

  /**
   * Analytic vector–Jacobian products for `grad`: reverse mode through the RK4 (or Euler) stages,
   * with the gradient of the forcing `F` (parameter `forcing`, a scalar).
   */
  hostVjp(dtype: DType): HostVjp {
    const D = this.stateSize;
    // F and dt as the dtype stores them (the cell's ops round them for float32).
    const round = dtype === 'float32' ? Math.fround : (v: number) => v;
    const F = round(this.forcing);
    const dt = round(this.dt);
    const rk4 = this.integrator === 'rk4';
    const stage = Array.from({ length: 4 }, () => new Float64Array(D)); // x, x2, x3, x4
    const k = Array.from({ length: 3 }, () => new Float64Array(D)); // k1, k2, k3
    const dk = new Float64Array(D);
    const dxs = new Float64Array(D);
    const carry = new Float64Array(D); // the cotangent reaching k_{j−1} through x_j
    const rhs = (x: Float64Array, out: Float64Array): void => {
      for (let i = 0; i < D; i++) out[i] = (x[(i + 1) % D] - x[(i - 2 + 2 * D) % D]) * x[(i - 1 + D) % D] - x[i] + F;
    };
    /** `out = g'(x)ᵀ w` (overwritten); returns `Σ w`, the forcing's share. */
    const rhsVjp = (x: Float64Array, w: Float64Array, out: Float64Array): number => {
      out.fill(0);
      let total = 0;
      for (let i = 0; i < D; i++) {
        const wi = w[i];
        const prev = x[(i - 1 + D) % D];
        out[(i + 1) % D] += wi * prev;
        out[(i - 2 + 2 * D) % D] -= wi * prev;
        out[(i - 1 + D) % D] += wi * (x[(i + 1) % D] - x[(i - 2 + 2 * D) % D]);
        out[i] -= wi;
        total += wi;
      }
      return total;
    };
    return {
      stateSize: D,
      inputSize: 0,
      parameters: [{ name: 'forcing', shape: [] }],
      step(prev: HostArray, prevOffset: number, _input, _inputOffset, w: HostArray, wOffset: number, out) {
        const [x, x2, x3, x4] = stage;
        const { state, stateOffset } = out;
        for (let i = 0; i < D; i++) x[i] = prev[prevOffset + i];
        let dF = 0;
        const add = (scale: number): void => {
          for (let i = 0; i < D; i++) state[stateOffset + i] += scale * dxs[i];
        };
        for (let i = 0; i < D; i++) state[stateOffset + i] = w[wOffset + i];
        if (!rk4) {
          for (let i = 0; i < D; i++) dk[i] = dt * w[wOffset + i];
          dF += rhsVjp(x, dk, dxs);
          add(1);
        } else {
          // Forward stages, then back through them: x' = x + dt/6 (k1 + 2k2 + 2k3 + k4).
          const [k1, k2, k3] = k;
          rhs(x, k1);
          for (let i = 0; i < D; i++) x2[i] = x[i] + 0.5 * dt * k1[i];
          rhs(x2, k2);
          for (let i = 0; i < D; i++) x3[i] = x[i] + 0.5 * dt * k2[i];
          rhs(x3, k3);
          for (let i = 0; i < D; i++) x4[i] = x[i] + dt * k3[i];
          // dk_j: the cotangents of k1..k4, each k_j = g(x_j) passing its share to x and k_{j−1}.
          const weights = [dt / 6, dt / 3, dt / 3, dt / 6];
          carry.fill(0);
          for (let j = 3; j >= 0; j--) {
            for (let i = 0; i < D; i++) dk[i] = weights[j] * w[wOffset + i] + carry[i];
            dF += rhsVjp(stage[j], dk, dxs);
            add(1);
            const h = j === 3 ? dt : 0.5 * dt; // x4 = x + dt k3, x3 = x + dt/2 k2, x2 = x + dt/2 k1
            for (let i = 0; i < D; i++) carry[i] = h * dxs[i];
          }
        }
        if (out.parameters) out.parameters[0][0] += dF;
      },
    };
  }

  /** Uploads the constant matrices of the Jacobian (`P₊₁ − P₋₂`, `P₋₁`, `I`). */
  bind(backend: ComputeBackend, context: BindContext): BoundCell {
    checkContext(context, 0, this.kind);
    const D = this.stateSize;
    const F = this.forcing;
    const h = this.dt;
    const b = backend;
    let q!: Tensor; // P₊₁ − P₋₂: multiplies diag(x_{i−1})
    let pm1!: Tensor; // P₋₁: multiplies diag(x_{i+1} − x_{i−2})
    let eye!: Tensor;
    const owned = uploadOwned(backend, (own) => {
      const qh = new Float64Array(D * D);
      addShift(qh, D, 1, 1);
      addShift(qh, D, -2, -1);
      const ph = new Float64Array(D * D);
      addShift(ph, D, -1, 1);
      const ih = new Float64Array(D * D);
      addShift(ih, D, 0, 1);
      q = own(b.fromArray(qh, [D, D], context.dtype));
      pm1 = own(b.fromArray(ph, [D, D], context.dtype));
      eye = own(b.fromArray(ih, [D, D], context.dtype));
    });

    // roll(x, s)[i] = x[i − s]: x_{i+1} = roll(x, −1), x_{i−1} = roll(x, 1), x_{i−2} = roll(x, 2).
    type Field = { f: Tensor; diff: Tensor; xm1: Tensor };
    const field = (x: Tensor): Field =>
      b.tidy(() => {
        const xm1 = b.roll(x, 1);
        const diff = b.binary('sub', b.roll(x, -1), b.roll(x, 2));
        const f = b.affine(b.binary('sub', b.binary('mul', diff, xm1), x), 1, F);
        return { f, diff, xm1 };
      });
    // Jf(x) = diag(x_{i−1})(P₊₁ − P₋₂) + diag(x_{i+1} − x_{i−2}) P₋₁ − I, in one tensor where the backend allows.
    const fieldJacobian = (v: Field): Tensor => {
      const j = rowScaledSum(b, v.xm1.shape.slice(0, -1), D, D, [{ terms: [[v.xm1, q], [v.diff, pm1]], diagConstant: -1 }], v.xm1.dtype);
      b.dispose([v.diff, v.xm1]);
      return j;
    };
    // I + a·K
    const eyePlus = (k: Tensor, a: number): Tensor => b.tidy(() => b.binary('add', eye, b.affine(k, a, 0)));
    const axpy = (x: Tensor, a: number, y: Tensor): Tensor => b.tidy(() => b.binary('add', x, b.affine(y, a, 0)));
    // Temporaries are freed as soon as they are dead: at most four [.., D, D] tensors live at once.
    const stage = (x: Tensor, a: number, y: Tensor): Field => {
      const xa = axpy(x, a, y);
      const out = field(xa);
      b.dispose(xa);
      return out;
    };
    const finish = (value: Tensor, dense: Tensor, want: 'dense' | 'diagonal'): { value: Tensor; jacobian: Tensor } => {
      if (want === 'dense') return { value, jacobian: dense };
      // D is small for this cell, so the diagonal is read off the dense Jacobian (no closed form
      // through four RK4 stages that avoids the D×D products).
      const diag = b.diagPart(dense);
      b.dispose(dense);
      return { value, jacobian: diag };
    };

    const forward: ForwardFn = (x, _drive, want) => {
      const s1 = field(x);
      if (this.integrator === 'euler') {
        const value = axpy(x, h, s1.f);
        if (want === 'value') return { value };
        const jf = fieldJacobian(s1);
        const dense = eyePlus(jf, h);
        b.dispose(jf);
        return finish(value, dense, want);
      }
      const s2 = stage(x, h / 2, s1.f);
      const s3 = stage(x, h / 2, s2.f);
      const s4 = stage(x, h, s3.f);
      const value = b.tidy(() => axpy(x, h / 6, sum(b, s1.f, b.affine(s2.f, 2, 0), b.affine(s3.f, 2, 0), s4.f)));
      b.dispose([s1.f, s2.f, s3.f, s4.f]);
      if (want === 'value') return { value };
      // Chain rule through the stages: K_1 = Jf(x), K_2 = Jf(x_2)(I + h/2 K_1), K_3 = Jf(x_3)(I + h/2 K_2),
      // K_4 = Jf(x_4)(I + h K_3); J = I + h/6 (K_1 + 2K_2 + 2K_3 + K_4), accumulated as it goes.
      const next = (k: Tensor, a: number, s: Field): Tensor => {
        const e = eyePlus(k, a);
        const jf = fieldJacobian(s);
        const out = b.matmul(jf, e);
        b.dispose([e, jf]);
        return out;
      };
      const k1 = fieldJacobian(s1);
      const k2 = next(k1, h / 2, s2);
      let acc = axpy(k1, 2, k2);
      b.dispose(k1);
      const k3 = next(k2, h / 2, s3);
      b.dispose(k2);
      const acc2 = axpy(acc, 2, k3);
      b.dispose(acc);
      const k4 = next(k3, h, s4);
      b.dispose(k3);
      acc = b.binary('add', acc2, k4);
      b.dispose([acc2, k4]);
      const dense = eyePlus(acc, h / 6);
      b.dispose(acc);
      return finish(value, dense, want);
    };
    return makeBoundCell({ backend, kind: this.kind, stateSize: D, context, drive: null, owned, forward });
  }
}

/**
 * A Lorenz-96 cell: `dimension` D, forcing F (default 8), step `dt` (default 0.01), integrator
 * `'rk4'` (default) or `'euler'`.
 *
 * @example
 * ```ts
 * import { evaluate } from '@pelk/core';
 * import { lorenz96 } from '@pelk/models';
 * const cell = lorenz96({ dimension: 5 });
 * const result = await evaluate(cell, null, { steps: 400, initialState: [8, 8, 8, 8, 8.01], method: 'deer' });
 * ```
 */
export function lorenz96(options: Lorenz96Options): Lorenz96Cell {
  checkKnownKeys(readObject(options, 'options'), LORENZ96_OPTION_KEYS, 'options');
  return lorenz96FromObject(options, 'options');
}

/** @internal Option keys of {@link lorenz96} (a spec's lorenz96 cell adds `type`). */
export const LORENZ96_OPTION_KEYS = ['dimension', 'forcing', 'dt', 'integrator'] as const;

/** @internal Validates a Lorenz-96 description (factory options or a spec `cell`). */
export function lorenz96FromObject(value: unknown, field: string): Lorenz96Cell {
  const o = readObject(value, field);
  const dimension = assertPositiveInteger(o.dimension, `${field}.dimension`);
  const forcing = o.forcing ?? 8;
  if (typeof forcing !== 'number' || !Number.isFinite(forcing)) {
    throw new InvalidArgumentError(`${field}.forcing`, 'a finite number', describeValue(forcing));
  }
  const dt = assertPositiveNumber(o.dt ?? 0.01, `${field}.dt`);
  const integrator = o.integrator ?? 'rk4';
  if (integrator !== 'rk4' && integrator !== 'euler') {
    throw new InvalidArgumentError(`${field}.integrator`, "'rk4' or 'euler'", describeValue(integrator));
  }
  return new Lorenz96Cell(dimension, forcing, dt, integrator);
}
