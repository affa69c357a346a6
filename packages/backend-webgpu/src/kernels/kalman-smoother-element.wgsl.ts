/**
 * Element algebra of the scalar Rauch–Tung–Striebel smoother (ALGORITHMS.md §7, scalar), run as a
 * scan in reverse time (scan step u ↔ time t = T−1−u). From the filtered moments `(m_t, P_t)`:
 * `P⁻ = F_{t+1}² P_t + q`, `E_t = P_t F_{t+1}/P⁻`, `g_t = m_t − E_t(F_{t+1} m_t + b_{t+1})`,
 * `L_t = P_t q/P⁻` (= `P_t − E_t F_{t+1} P_t`, written so it stays ≥ 0); the last step is
 * `(0, m_T, P_T)`. Smoothed `(m^s, P^s)_t = (E_t m^s_{t+1} + g_t, E_t² P^s_{t+1} + L_t)`: two
 * diagonal recurrences sharing `E`, so elements `(E, g, L)` compose as
 * `x then y = (E_y E_x, E_y g_x + g_y, E_y² L_x + L_y)`; identity `(1, 0, 0)`; seed unused (0).
 * Raw layout: `xM`, `xP` (filtered moments), `xF`, `xBias` `[B, T, D]`.
 */
import type { ScanAlgebra } from './scan-algebra.js';

/** WGSL (core / raw-element / seed parts) of the scalar RTS smoother element algebra (see `ScanAlgebra`). */
export function kalmanSmootherElementWgsl(): { core: string; raw: string; seed: string } {
  return {
    core: /* wgsl */ `
alias Elem = array<f32, 3>;   // E, g, L
alias State = array<f32, 2>;  // smoothed mean, smoothed variance

fn combineElem(x : Elem, y : Elem) -> Elem {
  return Elem(y[0] * x[0], fma(y[0], x[1], y[1]), fma(y[0] * y[0], x[2], y[2]));
}

fn applyElem(s : State, e : Elem) -> State {
  return State(fma(e[0], s[0], e[1]), fma(e[0] * e[0], s[1], e[2]));
}
`,
    raw: /* wgsl */ `
fn rawElem(b : i32, t : i32, d : i32) -> Elem {
  let i = (b * uniforms.T + t) * uniforms.D + d;
  let m = xM[i];
  let P = xP[i];
  if (t + 1 >= uniforms.T) {
    return Elem(0.0, m, P);
  }
  let F = xF[i + uniforms.D];
  let bias = xBias[i + uniforms.D];
  let Pp = fma(F * F, P, uniforms.q);
  let gain = P * F / Pp;
  return Elem(gain, m - gain * fma(F, m, bias), P * uniforms.q / Pp);
}
`,
    seed: /* wgsl */ `
fn seedState(b : i32, d : i32) -> State {
  return State(0.0, 0.0);
}
`,
  };
}

const parts = kalmanSmootherElementWgsl();

/** The scalar RTS smoother algebra as a `ScanAlgebra` (float uniform `q`); run it with `reverse`. */
export const kalmanSmootherAlgebra: ScanAlgebra = {
  name: 'rts',
  elementSize: 3,
  stateSize: 2,
  rawInputs: ['xM', 'xP', 'xF', 'xBias'],
  seedInputs: [],
  floatUniforms: ['q'],
  wgsl: parts.core,
  rawWgsl: parts.raw,
  seedWgsl: parts.seed,
};
