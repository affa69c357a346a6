/**
 * Element algebra of the diagonal linear recurrence `s_t = a_t s_{t−1} + b_t` (one scalar
 * recurrence per (batch, channel)): elements are affine maps `(a, b)`, composed as
 * `(a₁, b₁) then (a₂, b₂) = (a₂a₁, a₂b₁ + b₂)`; the state is `s`.
 * Raw layout: `xa`, `xb` `[B, T, D]`; seed `xinit` `[B, D]`.
 */
import type { ScanAlgebra } from './scan-algebra.js';

/** WGSL (core / raw-element / seed parts) of the diagonal affine element algebra (see `ScanAlgebra`). */
export function diagonalElementWgsl(): { core: string; raw: string; seed: string } {
  return {
    core: /* wgsl */ `
alias Elem = array<f32, 2>;
alias State = array<f32, 1>;

fn combineElem(x : Elem, y : Elem) -> Elem {
  return Elem(y[0] * x[0], fma(y[0], x[1], y[1]));
}

fn applyElem(s : State, e : Elem) -> State {
  return State(fma(e[0], s[0], e[1]));
}
`,
    raw: /* wgsl */ `
fn rawElem(b : i32, t : i32, d : i32) -> Elem {
  let i = (b * uniforms.T + t) * uniforms.D + d;
  return Elem(xa[i], xb[i]);
}
`,
    seed: /* wgsl */ `
fn seedState(b : i32, d : i32) -> State {
  return State(xinit[b * uniforms.D + d]);
}
`,
  };
}

const parts = diagonalElementWgsl();

/** The diagonal affine algebra as a `ScanAlgebra`. */
export const diagonalAlgebra: ScanAlgebra = {
  name: 'diag',
  elementSize: 2,
  stateSize: 1,
  rawInputs: ['xa', 'xb'],
  seedInputs: ['xinit'],
  floatUniforms: [],
  wgsl: parts.core,
  rawWgsl: parts.raw,
  seedWgsl: parts.seed,
};
