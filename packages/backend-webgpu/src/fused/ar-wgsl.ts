/**
 * WGSL of the fused `ar` kernels: the autoregressive cell over a GRU, LSTM or Elman program on the
 * packed state `s = [x, h]` (`D = I + D_h`), the twin of core's `hostArKernel`. The inner cell's
 * per-unit code is the RNN kernels' (`unitCode`), reading its state at `ipb` (past `x`) and its
 * drive from workgroup memory, where each step first projects `x` (`W_ih x + b`). After it:
 * the readout `[μ, ℓ] = W o + b`, `o = h'[0..H) (+ x with skip)`, `x' = μ + softplus(ℓ) ⊙ u`.
 *
 * Jacobian (rows `x'`, `h'`; columns `x`, `h`), with the inner `Jx = ∂h'/∂x` and `Jh = ∂h'/∂h`
 * evaluated entry by entry from the per-unit coefficients, `M = W_μ + diag(σ(ℓ) ⊙ u) W_ℓ` and
 * `∂o/∂x = Jx[0..H) + skip·E`: `J = [[M ∂o/∂x, M Jh[0..H)], [Jx, Jh]]`; its diagonal takes the
 * `x'` rows' `(M ∂o/∂x)_ii` and the inner diagonal.
 */
import type { ArProgram } from '@pelk/core';
import {
  MAGNITUDE_BITS_WGSL,
  type RnnKernelMode,
  type RnnLayout,
  activationWgsl,
  emitWgsl,
  entryHelpers,
  kernelPreamble,
  mainWgsl,
  rnnLayout,
  sharedStateWgsl,
  unitCode,
} from './rnn-wgsl.js';

/** The shape of an `ar` program's kernels. */
export interface ArLayout {
  readonly inner: RnnLayout;
  readonly I: number;
  readonly D: number;
  /** Workgroup memory of the largest kernel, in bytes. */
  readonly workgroupBytes: number;
  /** Offsets (in floats) of the packed weights after the inner's `W_hhᵀ`, `W_hh` and auxiliary words. */
  readonly offsets: { readonly wih: number; readonly bias: number; readonly readW: number; readonly readB: number; readonly total: number };
}

/** The layout of an `ar` program, given the length of the inner's auxiliary words. */
export function arLayout(p: ArProgram, auxLength: number): ArLayout {
  const inner = rnnLayout(p.inner);
  const { H, G, slots, planes } = inner;
  const I = p.inputSize;
  const Dh = inner.D;
  const D = I + Dh;
  const wih = 2 * G * H + auxLength;
  const bias = wih + G * I;
  const readW = bias + G;
  const readB = readW + 2 * I * H;
  // sh_prev, sh_next, the projected drive, the coefficient planes, h', its Jacobian's diagonal, σ(ℓ)·u.
  const workgroupBytes = 4 * (slots * (2 * D + G + planes * H + 2 * Dh + I) + 1);
  return { inner, I, D, workgroupBytes, offsets: { wih, bias, readW, readB, total: readB + 2 * I } };
}

/** `∂h'_k/∂x_j` of the inner cell, from its coefficient planes (`wih(g·I + j)` is `W_ih[g, j]`). */
function innerInputJacobian(p: ArProgram, L: RnnLayout): string {
  const { H } = L;
  const I = p.inputSize;
  const W = (gate: number, row: string) => `wih((${gate * H}u + ${row}) * ${I}u + j)`;
  const body: Record<string, string> = {
    elman: `return sh_c[cb + k] * ${W(0, 'k')};`,
    lstm: `let r = k % ${H}u;
  let dc = sh_c[cb + r] * ${W(0, 'r')} + sh_c[cb + ${H}u + r] * ${W(1, 'r')} + sh_c[cb + ${2 * H}u + r] * ${W(2, 'r')};
  return select(dc, sh_c[cb + ${4 * H}u + r] * dc + sh_c[cb + ${3 * H}u + r] * ${W(3, 'r')}, k < ${H}u);`,
    gruAfter: `return sh_c[cb + ${H}u + k] * ${W(0, 'k')} + sh_c[cb + ${2 * H}u + k] * ${W(1, 'k')} + sh_c[cb + ${4 * H}u + k] * ${W(2, 'k')};`,
    // cZ W_iz + gN (W_in + W_hn diag(q) W_ir).
    gruBefore: `var pq = 0.0;
  for (var m = 0u; m < ${H}u; m++) { pq += w((${2 * H}u + k) * ${H}u + m) * sh_c[cb + ${2 * H}u + m] * ${W(0, 'm')}; }
  return sh_c[cb + ${6 * H}u + k] * ${W(1, 'k')} + sh_c[cb + ${5 * H}u + k] * (${W(2, 'k')} + pq);`,
  };
  const kind = p.inner.kind === 'gru' ? (L.resetBefore ? 'gruBefore' : 'gruAfter') : p.inner.kind;
  return `
fn innerJx(cb : u32, k : u32, j : u32) -> f32 {
  ${body[kind]}
}`;
}

/** The WGSL of one mode of an `ar` program's kernels. */
export function arKernelWgsl(p: ArProgram, A: ArLayout, mode: RnnKernelMode): string {
  const L = A.inner;
  const { H, G, lanes, planes } = L;
  const { I, D } = A;
  const Dh = L.D;
  const slots = mode === 'rollout' ? 1 : L.slots;
  const dense = mode === 'dense';
  const lin = dense || mode === 'diagonal';
  const o = A.offsets;
  // The inner cell's code, moved onto the packed state and the projected drive.
  const inner = unitCode(p.inner, L, dense, lin, lin);
  const moved = (code: string) => code.replaceAll('sh_prev[pb + ', 'sh_prev[ipb + ').replaceAll('X[xb + ', 'sh_drv[db + ').replaceAll('emit(', 'innerEmit(');
  const units = (code: string) => `for (var u = lane; u < ${H}u; u += ${lanes}u) {${moved(code)}
  }`;
  const skipIndex = I === 1 ? '0u' : 'k';
  const header = `${kernelPreamble(mode, H, G)}
fn wih(i : u32) -> f32 { return WTS[${o.wih}u + i]; }
fn dbias(i : u32) -> f32 { return WTS[${o.bias}u + i]; }
fn rw(i : u32) -> f32 { return WTS[${o.readW}u + i]; }
fn rb(i : u32) -> f32 { return WTS[${o.readB}u + i]; }
${sharedStateWgsl(D, slots, mode)}
var<workgroup> sh_drv : array<f32, ${slots * G}>;
var<workgroup> sh_c : array<f32, ${slots * planes * H}>;
var<workgroup> sh_h2 : array<f32, ${slots * Dh}>;
var<workgroup> sh_jd : array<f32, ${slots * Dh}>;
var<workgroup> sh_s : array<f32, ${slots * I}>;
${activationWgsl('act', p.inner.activation)}
${activationWgsl('ract', p.inner.recurrentActivation ?? 'sigmoid')}
${MAGNITUDE_BITS_WGSL}
${dense ? entryHelpers(p.inner, L) : ''}
${dense ? `fn innerJh(cb : u32, i : u32, j : u32) -> f32 { return ${inner.entry}; }` : ''}
${lin ? innerInputJacobian(p, L) : ''}
/** The inner cell's value and Jacobian diagonal, kept for the readout. */
fn innerEmit(slot : u32, row : u32, idx : u32, v : f32, jd : f32) {
  sh_h2[slot * ${Dh}u + idx] = v;
  sh_jd[slot * ${Dh}u + idx] = jd;
}
/** softplus(ℓ), stable for any ℓ. */
fn softplus(l : f32) -> f32 { return max(l, 0.0) + log(1.0 + exp(-abs(l))); }
${
  lin
    ? `/** (M ∂o/∂x)[i, j] and (M Jh)[i, c]. */
fn mox(slot : u32, cb : u32, i : u32, j : u32) -> f32 {
  var d = 0.0;
  for (var k = 0u; k < ${H}u; k++) {
    let m = rw(i * ${H}u + k) + sh_s[slot * ${I}u + i] * rw((${I}u + i) * ${H}u + k);
    d += m * (innerJx(cb, k, j) + select(0.0, 1.0, ${p.readout.skip} && j == ${skipIndex}));
  }
  return d;
}`
    : ''
}
${
  dense
    ? `fn mjh(slot : u32, cb : u32, i : u32, c : u32) -> f32 {
  var d = 0.0;
  for (var k = 0u; k < ${H}u; k++) {
    d += (rw(i * ${H}u + k) + sh_s[slot * ${I}u + i] * rw((${I}u + i) * ${H}u + k)) * innerJh(cb, k, c);
  }
  return d;
}`
    : ''
}
${emitWgsl(D, mode)}`;

  /** One step of a slot, from `sh_prev` to emitted values: projection, inner phases, readout. */
  const step = (guard: string) => `
  ${guard} {
    for (var g = lane; g < ${G}u; g += ${lanes}u) {
      var a = dbias(g);
      for (var j = 0u; j < ${I}u; j++) { a += wih(g * ${I}u + j) * sh_prev[pb + j]; }
      sh_drv[db + g] = a;
    }
  }
  workgroupBarrier();
  ${inner.unitA ? `${guard} {\n  ${units(inner.unitA)}\n  }\n  workgroupBarrier();` : ''}
  ${guard} {
  ${units(inner.unitB)}
  }
  workgroupBarrier();
  ${guard} {
    for (var i = lane; i < ${I}u; i += ${lanes}u) {
      var mu = rb(i);
      var l = rb(${I}u + i);
      for (var k = 0u; k < ${H}u; k++) {
        let ok = sh_h2[slot * ${Dh}u + k] + select(0.0, sh_prev[pb + ${skipIndex}], ${p.readout.skip});
        mu += rw(i * ${H}u + k) * ok;
        l += rw((${I}u + i) * ${H}u + k) * ok;
      }
      let u = X[xb + i];
      let e = exp(-abs(l));
      sh_s[slot * ${I}u + i] = select(e / (1.0 + e), 1.0 / (1.0 + e), l >= 0.0) * u;
      ${lin ? '' : 'emit(slot, row, i, mu + softplus(l) * u, 0.0);'}
      ${lin ? `OUT[row * ${D}u + i] = mu + softplus(l) * u;` : ''}
    }
    for (var r = lane; r < ${Dh}u; r += ${lanes}u) {
      emit(slot, row, ${I}u + r, sh_h2[slot * ${Dh}u + r], sh_jd[slot * ${Dh}u + r]);
    }
  }`;

  // The x' rows: their defect and residual from the readout's value (written to OUT above).
  const xRows = lin
    ? `
  if (live) {
    for (var i = lane; i < ${I}u; i += ${lanes}u) {
      let d = OUT[row * ${D}u + i] - S[row * ${D}u + i];
      OUT[row * ${D}u + i] = d;
      resid = max(resid, magnitudeBits(d));
      ${dense ? '' : `JAC[row * ${D}u + i] = mox(slot, cb, i, i);`}
    }
  }`
    : '';
  const denseWrite = dense
    ? `
  if (live) {
    for (var e = lane; e < ${D * D}u; e += ${lanes}u) {
      let i = e / ${D}u;
      let j = e % ${D}u;
      var v = 0.0;
      if (i < ${I}u) {
        if (j < ${I}u) { v = mox(slot, cb, i, j); } else { v = mjh(slot, cb, i, j - ${I}u); }
      } else {
        if (j < ${I}u) { v = innerJx(cb, i - ${I}u, j); } else { v = innerJh(cb, i - ${I}u, j - ${I}u); }
      }
      JAC[row * ${D * D}u + e] = v;
    }
  }`
    : '';
  return `${header}
${mainWgsl({ mode, D, driveWidth: I, lanes, slots, lets: `let ipb = pb + ${I}u;\n  let db = slot * ${G}u;\n  let cb = slot * ${planes * H}u;`, body: step, tail: `\n  workgroupBarrier();${xRows}${denseWrite}` })}`;
}
