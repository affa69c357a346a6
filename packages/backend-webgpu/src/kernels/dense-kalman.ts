/**
 * The dense Kalman filter and RTS smoother on WebGPU (ELK's step): the Särkkä–García-Fernández
 * elements with D×D blocks (ALGORITHMS.md §7), for `x_t = F_t x_{t−1} + b_t + N(0, qI)`,
 * `y_t = x_t + N(0, rI)`, `x_0` known exactly — per batch entry.
 *
 * Each pass is a two-level chunked scan in three dispatches, chunks of `c = ⌈√T⌉` steps:
 * 1. reduce — one workgroup per (batch, chunk) folds its chunk's elements into one;
 * 2. carry — one workgroup per batch entry walks the chunk aggregates, writing the state entering
 *    each chunk;
 * 3. rescan — one workgroup per (batch, chunk) replays its chunk from that state, writing means and
 *    (symmetrised) covariances.
 * So the filter is 3 dispatches and filter + smoother 6, whatever T. A workgroup of 64 invocations
 * works on one element at a time: matrix products with lanes over the entries, an LU factorisation
 * with partial pivoting (the combine's `I + C₁J₂`, the smoother's `F P Fᵀ + qI`) with lanes over
 * the trailing entries, triangular solves with lanes over right-hand sides. Elements, carries and
 * temporaries live in one storage buffer (`WK`), each workgroup in its own region; storage
 * barriers separate the phases.
 */
import type { KalmanInputs } from '@pelk/backend-tfjs-node';
import type { Tensor } from '@pelk/core';
import type * as tfc from '@tensorflow/tfjs-core';
import { type CommandRecorder, checkBindingLimit } from '../fused/recorder.js';

/** Invocations per workgroup. */
const LANES = 64;

/** Sizes (in floats) of the work buffer's regions for `D`. */
function sizes(D: number) {
  const DD = D * D;
  return {
    DD,
    /** A filter element (A, b, C, η, J). */
    filterElement: 3 * DD + 2 * D,
    /** A smoother element (E, g, L). */
    smootherElement: 2 * DD + D,
    /** A state (m, P). */
    state: D + DD,
    /** Temporaries of one workgroup: an element, N, two right-hand-side blocks, two products, a state. */
    scratch: 3 * DD + 2 * D + DD + D * (2 * D + 1) + D * (D + 1) + 2 * DD + D + DD,
  };
}

/** Opens a loop of the workgroup's lanes over the D×D entries `k = (i, j)` of a block (closed by the caller). */
const EACH_ENTRY = `for (var k = lane; k < DD; k += LANES) {
    let i = k / D;
    let j = k % D;`;

/** The WGSL library every dense Kalman kernel shares: the matrix routines on `WK`. */
function library(D: number): string {
  const { DD } = sizes(D);
  return `
const D = ${D}u;
const DD = ${DD}u;
const LANES = ${LANES}u;
struct Params { B : u32, T : u32, c : u32, N : u32, q : f32, r : f32, agg : u32, carry : u32, scr : u32, pad0 : u32, pad1 : u32, pad2 : u32 }
var<workgroup> piv : array<u32, ${D}>;
var<workgroup> best : u32;

/** dst = a · b (tb: a · bᵀ), D×D, dst distinct from a and b. */
fn mm(dst : u32, a : u32, b : u32, tb : bool, lane : u32) {
  for (var e = lane; e < DD; e += LANES) {
    let i = e / D;
    let j = e % D;
    var s = 0.0;
    for (var k = 0u; k < D; k++) { s += WK[a + i * D + k] * select(WK[b + k * D + j], WK[b + j * D + k], tb); }
    WK[dst + e] = s;
  }
  storageBarrier();
}

/** In-place LU factorisation with partial pivoting of the D×D matrix at n (row swaps in piv). */
fn lu(n : u32, lane : u32) {
  for (var k = 0u; k < D; k++) {
    if (lane == 0u) {
      var p = k;
      var m = abs(WK[n + k * D + k]);
      for (var i = k + 1u; i < D; i++) {
        let v = abs(WK[n + i * D + k]);
        if (v > m) { m = v; p = i; }
      }
      best = p;
      piv[k] = p;
    }
    workgroupBarrier();
    let p = best;
    if (p != k) {
      for (var j = lane; j < D; j += LANES) {
        let t = WK[n + k * D + j];
        WK[n + k * D + j] = WK[n + p * D + j];
        WK[n + p * D + j] = t;
      }
    }
    storageBarrier();
    let pivot = WK[n + k * D + k];
    for (var i = k + 1u + lane; i < D; i += LANES) { WK[n + i * D + k] = WK[n + i * D + k] / pivot; }
    storageBarrier();
    let rest = D - k - 1u;
    for (var e = lane; e < rest * rest; e += LANES) {
      let i = k + 1u + e / rest;
      let j = k + 1u + e % rest;
      WK[n + i * D + j] -= WK[n + i * D + k] * WK[n + k * D + j];
    }
    storageBarrier();
  }
}

/** Solves N X = X in place for the D×cols block x (row stride cols), N factorised by lu. */
fn luSolve(n : u32, x : u32, cols : u32, lane : u32) {
  for (var c = lane; c < cols; c += LANES) {
    for (var k = 0u; k < D; k++) {
      let p = piv[k];
      if (p != k) {
        let t = WK[x + k * cols + c];
        WK[x + k * cols + c] = WK[x + p * cols + c];
        WK[x + p * cols + c] = t;
      }
    }
    for (var i = 1u; i < D; i++) {
      var s = WK[x + i * cols + c];
      for (var k = 0u; k < i; k++) { s -= WK[n + i * D + k] * WK[x + k * cols + c]; }
      WK[x + i * cols + c] = s;
    }
    for (var ii = 0u; ii < D; ii++) {
      let i = D - 1u - ii;
      var s = WK[x + i * cols + c];
      for (var k = i + 1u; k < D; k++) { s -= WK[n + i * D + k] * WK[x + k * cols + c]; }
      WK[x + i * cols + c] = s / WK[n + i * D + i];
    }
  }
  storageBarrier();
}

/** Solves Nᵀ X = X in place (Nᵀ = Uᵀ Lᵀ P): Uᵀ forward, Lᵀ backward, then the rows unpermuted. */
fn luSolveT(n : u32, x : u32, cols : u32, lane : u32) {
  for (var c = lane; c < cols; c += LANES) {
    for (var i = 0u; i < D; i++) {
      var s = WK[x + i * cols + c];
      for (var k = 0u; k < i; k++) { s -= WK[n + k * D + i] * WK[x + k * cols + c]; }
      WK[x + i * cols + c] = s / WK[n + i * D + i];
    }
    for (var ii = 0u; ii < D; ii++) {
      let i = D - 1u - ii;
      var s = WK[x + i * cols + c];
      for (var k = i + 1u; k < D; k++) { s -= WK[n + k * D + i] * WK[x + k * cols + c]; }
      WK[x + i * cols + c] = s;
    }
    for (var kk = 0u; kk < D; kk++) {
      let k = D - 1u - kk;
      let p = piv[k];
      if (p != k) {
        let t = WK[x + k * cols + c];
        WK[x + k * cols + c] = WK[x + p * cols + c];
        WK[x + p * cols + c] = t;
      }
    }
  }
  storageBarrier();
}

/** Copies n floats. */
fn copy(dst : u32, src : u32, n : u32, lane : u32) {
  for (var e = lane; e < n; e += LANES) { WK[dst + e] = WK[src + e]; }
  storageBarrier();
}

/** The D×D block at a, replaced by (a + aᵀ)/2 through the temporary t. */
fn symmetrise(a : u32, t : u32, lane : u32) {
  copy(t, a, DD, lane);
  for (var e = lane; e < DD; e += LANES) { WK[a + e] = 0.5 * (WK[t + e] + WK[t + (e % D) * D + e / D]); }
  storageBarrier();
}
`;
}

/** WGSL of the filter's element algebra (on top of {@link library}). */
function filterAlgebra(D: number): string {
  const z = sizes(D);
  const { DD } = z;
  // Element offsets within an element region; scratch offsets within a workgroup's region.
  const EL = { A: 0, b: DD, C: DD + D, eta: 2 * DD + D, J: 2 * DD + 2 * D };
  const S = { E: 0, N: z.filterElement, R1: z.filterElement + DD, R2: z.filterElement + DD + D * (2 * D + 1) };
  const P1 = S.R2 + D * (D + 1);
  const P2 = P1 + DD;
  return `
const eA = ${EL.A}u; const eb = ${EL.b}u; const eC = ${EL.C}u; const eEta = ${EL.eta}u; const eJ = ${EL.J}u;
const sE = ${S.E}u; const sN = ${S.N}u; const sR1 = ${S.R1}u; const sR2 = ${S.R2}u; const sP1 = ${P1}u; const sP2 = ${P2}u;

/** The element of step t of batch b at e: A = αF, b = (r b_t + q y_t)/(q+r), C = γI, η = Fᵀ(y_t − b_t)/(q+r), J = FᵀF/(q+r). */
fn element(e : u32, b : u32, t : u32, lane : u32) {
  let s = 1.0 / (P.q + P.r);
  let f = (b * P.T + t) * DD;
  let v = (b * P.T + t) * D;
  ${EACH_ENTRY}
    WK[e + eA + k] = P.r * s * XF[f + k];
    WK[e + eC + k] = select(0.0, P.q * P.r * s, i == j);
    var jj = 0.0;
    for (var m = 0u; m < D; m++) { jj += XF[f + m * D + i] * XF[f + m * D + j]; }
    WK[e + eJ + k] = s * jj;
  }
  for (var i = lane; i < D; i += LANES) {
    WK[e + eb + i] = s * (P.r * XB[v + i] + P.q * XY[v + i]);
    var h = 0.0;
    for (var m = 0u; m < D; m++) { h += XF[f + m * D + i] * (XY[v + m] - XB[v + m]); }
    WK[e + eEta + i] = s * h;
  }
  storageBarrier();
}

/** x ← x ∘ y (x earlier), with the workgroup's scratch at w. */
fn combine(x : u32, y : u32, w : u32, lane : u32) {
  // N = I + C_x J_y; R1 = [A_x | b_x + C_x η_y | C_x]; R2 = [η_y − J_y b_x | J_y A_x].
  ${EACH_ENTRY}
    var n = select(0.0, 1.0, i == j);
    var ja = 0.0;
    for (var m = 0u; m < D; m++) {
      n += WK[x + eC + i * D + m] * WK[y + eJ + m * D + j];
      ja += WK[y + eJ + i * D + m] * WK[x + eA + m * D + j];
    }
    WK[w + sN + k] = n;
    WK[w + sR1 + i * ${2 * D + 1}u + j] = WK[x + eA + k];
    WK[w + sR1 + i * ${2 * D + 1}u + D + 1u + j] = WK[x + eC + k];
    WK[w + sR2 + i * ${D + 1}u + 1u + j] = ja;
  }
  for (var i = lane; i < D; i += LANES) {
    var cb = WK[x + eb + i];
    var jb = WK[y + eEta + i];
    for (var m = 0u; m < D; m++) {
      cb += WK[x + eC + i * D + m] * WK[y + eEta + m];
      jb -= WK[y + eJ + i * D + m] * WK[x + eb + m];
    }
    WK[w + sR1 + i * ${2 * D + 1}u + D] = cb;
    WK[w + sR2 + i * ${D + 1}u] = jb;
  }
  storageBarrier();
  lu(w + sN, lane);
  luSolve(w + sN, w + sR1, ${2 * D + 1}u, lane);
  luSolveT(w + sN, w + sR2, ${D + 1}u, lane);
  // η = A_xᵀ Y_η + η_x; J = A_xᵀ Y_J + J_x (in place: each entry reads only its own old value).
  ${EACH_ENTRY}
    var s = WK[x + eJ + k];
    for (var m = 0u; m < D; m++) { s += WK[x + eA + m * D + i] * WK[w + sR2 + m * ${D + 1}u + 1u + j]; }
    WK[x + eJ + k] = s;
  }
  for (var i = lane; i < D; i += LANES) {
    var s = WK[x + eEta + i];
    for (var m = 0u; m < D; m++) { s += WK[x + eA + m * D + i] * WK[w + sR2 + m * ${D + 1}u]; }
    WK[x + eEta + i] = s;
  }
  storageBarrier();
  // A = A_y X_A, b = A_y X_b + b_y, P1 = A_y X_C.
  ${EACH_ENTRY}
    var a = 0.0;
    var c = 0.0;
    for (var m = 0u; m < D; m++) {
      let ay = WK[y + eA + i * D + m];
      a += ay * WK[w + sR1 + m * ${2 * D + 1}u + j];
      c += ay * WK[w + sR1 + m * ${2 * D + 1}u + D + 1u + j];
    }
    WK[x + eA + k] = a;
    WK[w + sP1 + k] = c;
  }
  for (var i = lane; i < D; i += LANES) {
    var s = WK[y + eb + i];
    for (var m = 0u; m < D; m++) { s += WK[y + eA + i * D + m] * WK[w + sR1 + m * ${2 * D + 1}u + D]; }
    WK[x + eb + i] = s;
  }
  storageBarrier();
  // C = P1 A_yᵀ + C_y.
  ${EACH_ENTRY}
    var s = WK[y + eC + k];
    for (var m = 0u; m < D; m++) { s += WK[w + sP1 + i * D + m] * WK[y + eA + j * D + m]; }
    WK[x + eC + k] = s;
  }
  storageBarrier();
}

/** The state (m, P) at st ← the state after element e: m = A M (m + P η) + b, P = A M P Aᵀ + C, M = (I + P J)⁻¹. */
fn apply(st : u32, e : u32, w : u32, lane : u32) {
  ${EACH_ENTRY}
    var n = select(0.0, 1.0, i == j);
    var pa = 0.0;
    for (var m = 0u; m < D; m++) {
      let p = WK[st + D + i * D + m];
      n += p * WK[e + eJ + m * D + j];
      pa += p * WK[e + eA + j * D + m];
    }
    WK[w + sN + k] = n;
    WK[w + sR2 + i * ${D + 1}u + 1u + j] = pa;
  }
  for (var i = lane; i < D; i += LANES) {
    var s = WK[st + i];
    for (var m = 0u; m < D; m++) { s += WK[st + D + i * D + m] * WK[e + eEta + m]; }
    WK[w + sR2 + i * ${D + 1}u] = s;
  }
  storageBarrier();
  lu(w + sN, lane);
  luSolve(w + sN, w + sR2, ${D + 1}u, lane);
  ${EACH_ENTRY}
    var s = WK[e + eC + k];
    for (var m = 0u; m < D; m++) { s += WK[e + eA + i * D + m] * WK[w + sR2 + m * ${D + 1}u + 1u + j]; }
    WK[st + D + k] = s;
  }
  for (var i = lane; i < D; i += LANES) {
    var s = WK[e + eb + i];
    for (var m = 0u; m < D; m++) { s += WK[e + eA + i * D + m] * WK[w + sR2 + m * ${D + 1}u]; }
    WK[st + i] = s;
  }
  storageBarrier();
  symmetrise(st + D, w + sP2, lane);
}
`;
}

/** WGSL of the smoother's element algebra: elements (E, g, L), states (g, L). */
function smootherAlgebra(D: number): string {
  const z = sizes(D);
  const { DD } = z;
  const S = { E: 0, N: z.smootherElement, T1: z.smootherElement + DD, X: z.smootherElement + 2 * DD, V: z.smootherElement + 3 * DD, P2: z.smootherElement + 3 * DD + D, G: z.smootherElement + 4 * DD + D };
  return `
const eE = 0u; const eg = ${DD}u; const eL = ${DD + D}u;
const sE = ${S.E}u; const sN = ${S.N}u; const sT1 = ${S.T1}u; const sX = ${S.X}u; const sV = ${S.V}u; const sP2 = ${S.P2}u; const sG = ${S.G}u;

/** The element of step t at e, from the filtered (m_t, P_t) and F_{t+1}, b_{t+1}; the last step's is (0, m_T, P_T). */
fn element(e : u32, b : u32, t : u32, w : u32, lane : u32) {
  let v = (b * P.T + t) * D;
  let f = (b * P.T + t) * DD;
  if (t + 1u >= P.T) {
    for (var k = lane; k < DD; k += LANES) { WK[e + eE + k] = 0.0; WK[e + eL + k] = XP[f + k]; }
    for (var i = lane; i < D; i += LANES) { WK[e + eg + i] = XM[v + i]; }
    storageBarrier();
    return;
  }
  let f1 = f + DD;
  // T1 = F P_t; N = T1 Fᵀ + qI (the predicted covariance, SPD); v = F m_t + b_{t+1}.
  ${EACH_ENTRY}
    var s = 0.0;
    for (var m = 0u; m < D; m++) { s += XF[f1 + i * D + m] * XP[f + m * D + j]; }
    WK[w + sT1 + k] = s;
  }
  for (var i = lane; i < D; i += LANES) {
    var s = XB[v + D + i];
    for (var m = 0u; m < D; m++) { s += XF[f1 + i * D + m] * XM[v + m]; }
    WK[w + sV + i] = s;
  }
  storageBarrier();
  ${EACH_ENTRY}
    var s = select(0.0, P.q, i == j);
    for (var m = 0u; m < D; m++) { s += WK[w + sT1 + i * D + m] * XF[f1 + j * D + m]; }
    WK[w + sN + k] = s;
  }
  copy(w + sX, w + sT1, DD, lane);
  lu(w + sN, lane);
  // X = N⁻¹ F P_t, so E = P_t Fᵀ N⁻¹ = Xᵀ.
  luSolve(w + sN, w + sX, D, lane);
  for (var k = lane; k < DD; k += LANES) { WK[e + eE + k] = WK[w + sX + (k % D) * D + k / D]; }
  storageBarrier();
  // g = m_t − E v; L = P_t − E T1 (symmetrised).
  ${EACH_ENTRY}
    var s = XP[f + k];
    for (var m = 0u; m < D; m++) { s -= WK[e + eE + i * D + m] * WK[w + sT1 + m * D + j]; }
    WK[e + eL + k] = s;
  }
  for (var i = lane; i < D; i += LANES) {
    var s = XM[v + i];
    for (var m = 0u; m < D; m++) { s -= WK[e + eE + i * D + m] * WK[w + sV + m]; }
    WK[e + eg + i] = s;
  }
  storageBarrier();
  symmetrise(e + eL, w + sP2, lane);
}

/** (g, L) at st ← (E g + g_e, E L Eᵀ + L_e) with element e; withE: also E ← E_e E (combining elements). */
fn apply(st : u32, e : u32, w : u32, withE : bool, lane : u32) {
  // T1 = E_e L; G = E_e g (and X = E_e E).
  ${EACH_ENTRY}
    var s = 0.0;
    var x = 0.0;
    for (var m = 0u; m < D; m++) {
      let em = WK[e + eE + i * D + m];
      s += em * WK[st + eL - eE + m * D + j];
      if (withE) { x += em * WK[st + m * D + j]; }
    }
    WK[w + sT1 + k] = s;
    WK[w + sX + k] = x;
  }
  for (var i = lane; i < D; i += LANES) {
    var s = WK[e + eg + i];
    for (var m = 0u; m < D; m++) { s += WK[e + eE + i * D + m] * WK[st + eg - eE + m]; }
    WK[w + sG + i] = s;
  }
  storageBarrier();
  ${EACH_ENTRY}
    var s = WK[e + eL + k];
    for (var m = 0u; m < D; m++) { s += WK[w + sT1 + i * D + m] * WK[e + eE + j * D + m]; }
    WK[st + eL - eE + k] = s;
    if (withE) { WK[st + k] = WK[w + sX + k]; }
  }
  for (var i = lane; i < D; i += LANES) { WK[st + eg - eE + i] = WK[w + sG + i]; }
  storageBarrier();
  symmetrise(st + eL - eE, w + sP2, lane);
}
`;
}

/** The first and one-past-last step of chunk k. */
const CHUNK_RANGE = `
fn chunkStart(k : u32) -> u32 { return k * P.c; }
fn chunkEnd(k : u32) -> u32 { return min(P.T, (k + 1u) * P.c); }`;

/** The workgroup's flat index (dispatches fold past the per-dimension limit). */
const MAIN = (body: string) => `
@compute @workgroup_size(${LANES})
fn main(@builtin(local_invocation_index) lane : u32, @builtin(workgroup_id) wid : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>) {
  let g = wid.x + wid.y * nwg.x;
  ${body}
}`;

const bindings = (names: readonly [string, 'read' | 'write'][]) =>
  [
    '@group(0) @binding(0) var<uniform> P : Params;',
    ...names.map(([n, k], i) => `@group(0) @binding(${i + 1}) var<storage, ${k === 'write' ? 'read_write' : 'read'}> ${n} : array<f32>;`),
  ].join('\n');

/** The kernels' WGSL and binding lists, per pass and phase. */
function kernelSource(D: number, pass: 'filter' | 'smoother', phase: 'reduce' | 'carry' | 'rescan'): { code: string; names: [string, 'read' | 'write'][] } {
  const z = sizes(D);
  const inputs: [string, 'read' | 'write'][] =
    pass === 'filter'
      ? [
          ['XF', 'read'],
          ['XB', 'read'],
          ['XY', 'read'],
        ]
      : [
          ['XF', 'read'],
          ['XB', 'read'],
          ['XM', 'read'],
          ['XP', 'read'],
        ];
  // Every kernel binds the element inputs: WGSL resolves the element functions even where unused.
  const names: [string, 'read' | 'write'][] =
    phase === 'carry'
      ? [...inputs, ...(pass === 'filter' ? ([['X0', 'read']] as [string, 'read'][]) : []), ['WK', 'write']]
      : phase === 'reduce'
        ? [...inputs, ['WK', 'write']]
        : [...inputs, ['WK', 'write'], ['OM', 'write'], ['OP', 'write']];
  const el = pass === 'filter' ? z.filterElement : z.smootherElement;
  const filter = pass === 'filter';
  // Regions: the aggregate of (b, k) at P.agg + (b·N + k)·el; the state entering it at P.carry + (b·N + k)·state; scratch at P.scr + (b·N + k)·scratch.
  const regions = `
  let aggOf = P.agg + g * ${el}u;
  let carryOf = P.carry + g * ${z.state}u;
  let w = P.scr + g * ${z.scratch}u;`;
  // An element built at the scratch base w keeps its temporaries after it (the algebras' offsets).
  const elementAt = (at: string, t: string) => (filter ? `element(${at}, b, ${t}, lane);` : `element(${at}, b, ${t}, w, lane);`);
  let body: string;
  if (phase === 'reduce') {
    body = `
  if (g >= P.B * P.N) { return; }
  let b = g / P.N;
  let k = g % P.N;${regions}
  let first = chunkStart(k);
  let last = chunkEnd(k) - 1u;
  ${
    filter
      ? `${elementAt('aggOf', 'first')}
  for (var t = first + 1u; t <= last; t++) {
    ${elementAt('w', 't')}
    combine(aggOf, w, w, lane);
  }`
      : `${elementAt('aggOf', 'last')}
  for (var tt = first; tt < last; tt++) {
    let t = last - 1u - (tt - first);
    ${elementAt('w', 't')}
    apply(aggOf, w, w, true, lane);
  }`
  }`;
  } else if (phase === 'carry') {
    body = `
  if (g >= P.B) { return; }
  let b = g;
  let w = P.scr + b * P.N * ${z.scratch}u;
  ${
    filter
      ? `let c0 = P.carry + b * P.N * ${z.state}u;
  for (var i = lane; i < D; i += LANES) { WK[c0 + i] = X0[b * D + i]; }
  for (var e = lane; e < DD; e += LANES) { WK[c0 + D + e] = 0.0; }
  storageBarrier();
  for (var k = 1u; k < P.N; k++) {
    let c = P.carry + (b * P.N + k) * ${z.state}u;
    copy(c, c - ${z.state}u, ${z.state}u, lane);
    apply(c, P.agg + (b * P.N + k - 1u) * ${z.filterElement}u, w, lane);
  }`
      : `let cl = P.carry + (b * P.N + P.N - 1u) * ${z.state}u;
  for (var e = lane; e < ${z.state}u; e += LANES) { WK[cl + e] = 0.0; }
  storageBarrier();
  for (var kk = 1u; kk < P.N; kk++) {
    let k = P.N - 1u - kk;
    let c = P.carry + (b * P.N + k) * ${z.state}u;
    copy(c, c + ${z.state}u, ${z.state}u, lane);
    // The state is stored after an unused E block's place: (g, L) read at st + eg, st + eL relative to st − DD.
    apply(c - DD, P.agg + (b * P.N + k + 1u) * ${z.smootherElement}u, w, false, lane);
  }`
  }`;
  } else {
    body = `
  if (g >= P.B * P.N) { return; }
  let b = g / P.N;
  let k = g % P.N;${regions}
  let st = w + ${z.scratch - z.state}u;
  copy(st, carryOf, ${z.state}u, lane);
  let first = chunkStart(k);
  let last = chunkEnd(k) - 1u;
  for (var tt = first; tt <= last; tt++) {
    let t = ${filter ? 'tt' : 'last - (tt - first)'};
    ${elementAt('w', 't')}
    ${filter ? `apply(st, w, w, lane);` : `apply(st - DD, w, w, false, lane);`}
    let v = (b * P.T + t) * D;
    for (var i = lane; i < D; i += LANES) { OM[v + i] = WK[st + i]; }
    for (var e = lane; e < DD; e += LANES) { OP[v * D + e] = WK[st + D + e]; }
  }`;
  }
  const header = `${library(D)}${bindings(names)}\n${filter ? filterAlgebra(D) : smootherAlgebra(D)}${CHUNK_RANGE}`;
  return { code: `${header}\n${MAIN(body)}`, names };
}

/** Creates an uninitialised float32 tensor (kernels write all of it). */
type Empty = (shape: readonly number[]) => tfc.Tensor;

/** The work buffer's floats for `B` batch entries of `T` steps of size `D`. */
function workFloats(B: number, T: number, D: number): number {
  const z = sizes(D);
  const N = Math.ceil(T / Math.max(1, Math.ceil(Math.sqrt(T))));
  return B * N * (z.filterElement + z.state + z.scratch);
}

/**
 * Refuses, before anything is allocated, a dense Kalman pass whose work buffer or covariances
 * exceed one storage binding of the adapter (`ResourceLimitError` naming the limit).
 */
export function checkKalmanDenseLimits(limits: GPUSupportedLimits, B: number, T: number, D: number): void {
  const shape = `B = ${B}, T = ${T}, D = ${D}`;
  checkBindingLimit(limits, 'kalmanDense work buffer', workFloats(B, T, D), shape);
  checkBindingLimit(limits, 'kalmanDense covariance', B * T * D * D, shape);
}

/**
 * The dense Kalman filter (and, with `smooth`, the RTS smoother) in 3 (6) dispatches. Returns the
 * means `[B, T, D]` and covariances `[B, T, D, D]` (the caller owns them).
 */
export function kalmanDenseGpu(recorder: CommandRecorder, empty: Empty, m: KalmanInputs, smooth: boolean): { mean: tfc.Tensor; covariance: tfc.Tensor } {
  const [B, T, D] = m.bias.shape as [number, number, number];
  const z = sizes(D);
  const c = Math.max(1, Math.ceil(Math.sqrt(T)));
  const N = Math.ceil(T / c);
  const groups = B * N;
  const agg = 0;
  const carry = agg + groups * z.filterElement;
  const scr = carry + groups * z.state;
  const work = empty([workFloats(B, T, D)]);
  const words = new Uint32Array(12);
  const floats = new Float32Array(words.buffer);
  words.set([B, T, c, N]);
  floats[4] = m.q;
  floats[5] = m.r;
  words.set([agg, carry, scr], 6);
  const run = (pass: 'filter' | 'smoother', phase: 'reduce' | 'carry' | 'rescan', tensors: tfc.Tensor[], workgroups: number) => {
    const { code, names } = kernelSource(D, pass, phase);
    const kernel = recorder.kernel(`pelk-kalman-dense-${pass}-${phase}-${D}`, code, ['uniform', ...names.map(([, k]) => k)], LANES);
    recorder.dispatch(kernel, words, tensors as unknown as Tensor[], workgroups);
  };
  const mean = empty([B, T, D]);
  const covariance = empty([B, T, D, D]);
  try {
    run('filter', 'reduce', [m.F, m.bias, m.y, work], groups);
    run('filter', 'carry', [m.F, m.bias, m.y, m.init, work], B);
    run('filter', 'rescan', [m.F, m.bias, m.y, work, mean, covariance], groups);
    if (!smooth) return { mean, covariance };
    const sMean = empty([B, T, D]);
    const sCov = empty([B, T, D, D]);
    try {
      run('smoother', 'reduce', [m.F, m.bias, mean, covariance, work], groups);
      run('smoother', 'carry', [m.F, m.bias, mean, covariance, work], B);
      run('smoother', 'rescan', [m.F, m.bias, mean, covariance, work, sMean, sCov], groups);
    } catch (err) {
      sMean.dispose();
      sCov.dispose();
      throw err;
    }
    mean.dispose();
    covariance.dispose();
    return { mean: sMean, covariance: sCov };
  } catch (err) {
    mean.dispose();
    covariance.dispose();
    throw err;
  } finally {
    work.dispose();
  }
}
