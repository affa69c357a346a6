/**
 * Element algebra of the scalar Kalman filter (Särkkä & García-Fernández; ALGORITHMS.md §6–7 with
 * H = 1, Q = q, R = r), one model per (batch, channel): `x_0 = init` known exactly,
 * `x_t = F_t x_{t−1} + b_t + N(0, q)`, `y_t = x_t + N(0, r)`.
 *
 * Element `(A, b, C, η, J)` for step t (generic form; exact since `x_0` is known, P_0 = 0):
 * `A = rF/(q+r)`, `b = (r b_t + q y_t)/(q+r)`, `C = qr/(q+r)`, `η = F(y_t − b_t)/(q+r)`,
 * `J = F²/(q+r)`. Combine (x earlier), `δ = 1 + C_x J_y ≥ 1`:
 * `A = A_x A_y/δ`, `b = A_y(C_x η_y + b_x)/δ + b_y`, `C = C_x A_y²/δ + C_y`,
 * `η = A_x(η_y − J_y b_x)/δ + η_x`, `J = J_y A_x²/δ + J_x`.
 * State `(m, P)` (filtered mean and variance) acts as the element `(0, m, P, 0, 0)`; applying an
 * element to it is exactly one predict + update step. Identity `(1, 0, 0, 0, 0)`.
 * Raw layout: `xF`, `xBias`, `xY` `[B, T, D]`; seed `xInit` `[B, D]` (the mean; variance 0).
 */
import type { ScanAlgebra } from './scan-algebra.js';

/** WGSL (core / raw-element / seed parts) of the scalar Kalman filter element algebra (see `ScanAlgebra`). */
export function kalmanFilterElementWgsl(): { core: string; raw: string; seed: string } {
  return {
    core: /* wgsl */ `
alias Elem = array<f32, 5>;   // A, b, C, eta, J
alias State = array<f32, 2>;  // mean, variance

fn combineElem(x : Elem, y : Elem) -> Elem {
  let inv = 1.0 / fma(x[2], y[4], 1.0);
  return Elem(
    x[0] * y[0] * inv,
    fma(y[0] * fma(x[2], y[3], x[1]), inv, y[1]),
    fma(x[2] * y[0] * y[0], inv, y[2]),
    fma(x[0] * fma(-y[4], x[1], y[3]), inv, x[3]),
    fma(y[4] * x[0] * x[0], inv, x[4]));
}

fn applyElem(s : State, e : Elem) -> State {
  let inv = 1.0 / fma(s[1], e[4], 1.0);
  return State(fma(e[0] * fma(s[1], e[3], s[0]), inv, e[1]), fma(s[1] * e[0] * e[0], inv, e[2]));
}
`,
    raw: /* wgsl */ `
fn rawElem(b : i32, t : i32, d : i32) -> Elem {
  let i = (b * uniforms.T + t) * uniforms.D + d;
  let F = xF[i];
  let bias = xBias[i];
  let y = xY[i];
  let q = uniforms.q;
  let r = uniforms.r;
  let invS = 1.0 / (q + r);
  return Elem(r * F * invS, fma(r, bias, q * y) * invS, q * r * invS, F * (y - bias) * invS, F * F * invS);
}
`,
    seed: /* wgsl */ `
fn seedState(b : i32, d : i32) -> State {
  return State(xInit[b * uniforms.D + d], 0.0);
}
`,
  };
}

const parts = kalmanFilterElementWgsl();

/** The scalar Kalman filter algebra as a `ScanAlgebra` (float uniforms `q`, `r`). */
export const kalmanFilterAlgebra: ScanAlgebra = {
  name: 'kf',
  elementSize: 5,
  stateSize: 2,
  rawInputs: ['xF', 'xBias', 'xY'],
  seedInputs: ['xInit'],
  floatUniforms: ['q', 'r'],
  wgsl: parts.core,
  rawWgsl: parts.raw,
  seedWgsl: parts.seed,
};
