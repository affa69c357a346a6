// pelk's WebAssembly kernels (AssemblyScript, 128-bit SIMD), compiled by scripts/build-wasm.mjs.
//
// Every kernel is generic over the element type T (f32 or f64) and exported once per type
// (`…32`, `…64`). Nothing here allocates: JavaScript owns the memory (imported) and passes byte
// offsets of tensors, weights and scratch. A cell is described by a descriptor block of f64 values
// (see `Desc`), written by src/program-kernels.ts; the math is that of core's host kernels
// (packages/core/src/fused/host-rnn.ts), which the conformance suite checks these against.

// ---- descriptor ------------------------------------------------------------------------------

/** Slots of a cell descriptor (f64 values; pointers are byte offsets). */
namespace Desc {
  export const KIND = 0; // 0 GRU, 1 LSTM, 2 Elman
  export const H = 1;
  export const RESET_AFTER = 2;
  export const ACT = 3; // candidate / Elman activation
  export const RA = 4; // gate activation
  export const WHH_T = 5; // [H, G]: W_hhᵀ (matrix–vector products stream its rows)
  export const WHH = 6; // [G, H]: W_hh (rows of dense Jacobians)
  export const B_HN = 7; // [H]: GRU b_hn
  export const DIAG = 8; // [G]: the diagonal of each gate block of W_hh
  export const E = 9; // [H, H]: GRU (not resetAfter) E[i,k] = W_hn[i,k] W_hr[k,i]
  export const SCRATCH = 10; // one step's intermediates (size by kind: see program-kernels.ts)
  export const G = 11;
  export const VALUE = 12; // [D]: a linearised step's value, beside the scratch
}

const GRU = 0;
const LSTM = 1;

@inline function slot(d: usize, k: i32): f64 {
  return load<f64>(d + (<usize>k << 3));
}
@inline function ptr(d: usize, k: i32): usize {
  return <usize>slot(d, k);
}
@inline function at<T>(base: usize, i: i32): usize {
  return base + (<usize>i << alignof<T>());
}
@inline function ld<T>(base: usize, i: i32): T {
  return load<T>(at<T>(base, i));
}
@inline function st<T>(base: usize, i: i32, v: T): void {
  store<T>(at<T>(base, i), v);
}

// ---- activations (the scalar forms of core's SCALAR_ACTIVATIONS) ----------------------------

@inline function expT<T>(x: T): T {
  if (sizeof<T>() == 4) return <T>Mathf.exp(<f32>x);
  return <T>Math.exp(<f64>x);
}
@inline function tanhT<T>(x: T): T {
  if (sizeof<T>() == 4) return <T>Mathf.tanh(<f32>x);
  return <T>Math.tanh(<f64>x);
}

@inline function activate<T>(kind: i32, x: T): T {
  if (kind == 0) return <T>1 / (<T>1 + expT<T>(-x)); // sigmoid; exp overflow gives the right limit 0
  if (kind == 1) {
    // hardSigmoid clip(0.2x + 0.5, 0, 1); NaN stays NaN
    const y = <T>0.2 * x + <T>0.5;
    return y < <T>0 ? <T>0 : y > <T>1 ? <T>1 : y;
  }
  if (kind == 2) return tanhT<T>(x);
  if (kind == 3) return x > <T>0 ? x : <T>0; // relu; NaN → 0
  return x; // linear
}

/** The derivative at pre-activation `x` with value `y`. */
@inline function derivative<T>(kind: i32, x: T, y: T): T {
  if (kind == 0) return y * (<T>1 - y);
  if (kind == 1) return abs<T>(x) < <T>2.5 ? <T>0.2 : <T>0;
  if (kind == 2) return <T>1 - y * y;
  if (kind == 3) return x > <T>0 ? <T>1 : <T>0;
  return <T>1;
}

// ---- matrix–vector products ------------------------------------------------------------------

/**
 * `out[j] = Σ_k x[k] · Wt[k, col0 + j]` for `j < cols`, `Wt` row-major with `N` columns.
 * Register-blocked: strips of four vectors of outputs stay in registers while `Wt` streams by.
 */
function matvec<T>(Wt: usize, N: i32, col0: i32, cols: i32, K: i32, x: usize, out: usize): void {
  const L = 16 / sizeof<T>();
  const rowBytes = <usize>N << alignof<T>();
  let j = 0;
  for (; j + 4 * L <= cols; j += 4 * L) {
    let a0 = v128.splat<T>(<T>0);
    let a1 = a0;
    let a2 = a0;
    let a3 = a0;
    let w = at<T>(Wt, col0 + j);
    for (let k = 0; k < K; k++) {
      const xv = v128.splat<T>(ld<T>(x, k));
      a0 = v128.add<T>(a0, v128.mul<T>(xv, v128.load(w)));
      a1 = v128.add<T>(a1, v128.mul<T>(xv, v128.load(w, 16)));
      a2 = v128.add<T>(a2, v128.mul<T>(xv, v128.load(w, 32)));
      a3 = v128.add<T>(a3, v128.mul<T>(xv, v128.load(w, 48)));
      w += rowBytes;
    }
    const o = at<T>(out, j);
    v128.store(o, a0);
    v128.store(o, a1, 16);
    v128.store(o, a2, 32);
    v128.store(o, a3, 48);
  }
  for (; j + L <= cols; j += L) {
    let a = v128.splat<T>(<T>0);
    let w = at<T>(Wt, col0 + j);
    for (let k = 0; k < K; k++) {
      a = v128.add<T>(a, v128.mul<T>(v128.splat<T>(ld<T>(x, k)), v128.load(w)));
      w += rowBytes;
    }
    v128.store(at<T>(out, j), a);
  }
  for (; j < cols; j++) {
    let a = <T>0;
    for (let k = 0; k < K; k++) a += ld<T>(x, k) * ld<T>(Wt, k * N + col0 + j);
    st<T>(out, j, a);
  }
}

/** `out[j] = a·X[j] + b·Y[j] + c·Z[j]` for `j < n` (rows of dense Jacobians). */
@inline function combine3<T>(n: i32, a: T, X: usize, b: T, Y: usize, c: T, Z: usize, out: usize): void {
  const L = 16 / sizeof<T>();
  const va = v128.splat<T>(a);
  const vb = v128.splat<T>(b);
  const vc = v128.splat<T>(c);
  let j = 0;
  for (; j + L <= n; j += L) {
    const v = v128.add<T>(
      v128.add<T>(v128.mul<T>(va, v128.load(at<T>(X, j))), v128.mul<T>(vb, v128.load(at<T>(Y, j)))),
      v128.mul<T>(vc, v128.load(at<T>(Z, j))),
    );
    v128.store(at<T>(out, j), v);
  }
  for (; j < n; j++) st<T>(out, j, a * ld<T>(X, j) + b * ld<T>(Y, j) + c * ld<T>(Z, j));
}

// ---- GRU ---------------------------------------------------------------------------------------

/** Gate and candidate values of one GRU step into the scratch (rec, aG, g, rh, aN, n). */
function gruForward<T>(d: usize, prev: usize, x: usize): void {
  const H = <i32>slot(d, Desc.H);
  const G = 3 * H;
  const resetAfter = slot(d, Desc.RESET_AFTER) != 0;
  const act = <i32>slot(d, Desc.ACT);
  const ra = <i32>slot(d, Desc.RA);
  const WT = ptr(d, Desc.WHH_T);
  const bHn = ptr(d, Desc.B_HN);
  const rec = ptr(d, Desc.SCRATCH);
  const aG = at<T>(rec, G);
  const g = at<T>(aG, 2 * H);
  const rh = at<T>(g, 2 * H);
  const aN = at<T>(rh, H);
  const n = at<T>(aN, H);
  matvec<T>(WT, G, 0, resetAfter ? G : 2 * H, H, prev, rec);
  for (let i = 0; i < 2 * H; i++) {
    const a = ld<T>(x, i) + ld<T>(rec, i);
    st<T>(aG, i, a);
    st<T>(g, i, activate<T>(ra, a));
  }
  if (!resetAfter) {
    for (let i = 0; i < H; i++) st<T>(rh, i, ld<T>(g, i) * ld<T>(prev, i));
    matvec<T>(WT, G, 2 * H, H, H, rh, at<T>(rec, 2 * H));
  }
  for (let i = 0; i < H; i++) {
    const hn = ld<T>(rec, 2 * H + i);
    const a = ld<T>(x, 2 * H + i) + (resetAfter ? ld<T>(g, i) * (hn + ld<T>(bHn, i)) : hn);
    st<T>(aN, i, a);
    st<T>(n, i, activate<T>(act, a));
  }
}

function gruStep<T>(d: usize, prev: usize, x: usize, out: usize): void {
  gruForward<T>(d, prev, x);
  const H = <i32>slot(d, Desc.H);
  const rec = ptr(d, Desc.SCRATCH);
  const g = at<T>(rec, 3 * H + 2 * H);
  const n = at<T>(g, 2 * H + 2 * H);
  for (let i = 0; i < H; i++) {
    const ni = ld<T>(n, i);
    st<T>(out, i, ni + ld<T>(g, H + i) * (ld<T>(prev, i) - ni));
  }
}

function gruLinearize<T>(d: usize, prev: usize, x: usize, value: usize, jac: usize, dense: bool): void {
  gruForward<T>(d, prev, x);
  const H = <i32>slot(d, Desc.H);
  const resetAfter = slot(d, Desc.RESET_AFTER) != 0;
  const act = <i32>slot(d, Desc.ACT);
  const ra = <i32>slot(d, Desc.RA);
  const W = ptr(d, Desc.WHH);
  const diag = ptr(d, Desc.DIAG);
  const bHn = ptr(d, Desc.B_HN);
  const rec = ptr(d, Desc.SCRATCH);
  const aG = at<T>(rec, 3 * H);
  const g = at<T>(aG, 2 * H);
  const aN = at<T>(g, 2 * H + H);
  const n = at<T>(aN, H);
  const q = at<T>(n, H);
  const P = at<T>(q, H);
  const wr = W;
  const wz = at<T>(W, H * H);
  const wn = at<T>(W, 2 * H * H);
  if (resetAfter) {
    // J = diag(gN r) W_hn + diag(gN hN ra'(aR)) W_hr + diag(cZ) W_hz + diag(z).
    for (let i = 0; i < H; i++) {
      const r = ld<T>(g, i);
      const z = ld<T>(g, H + i);
      const h = ld<T>(prev, i);
      const ni = ld<T>(n, i);
      st<T>(value, i, ni + z * (h - ni));
      const gN = (<T>1 - z) * derivative<T>(act, ld<T>(aN, i), ni);
      const cN = gN * r;
      const cR = gN * (ld<T>(rec, 2 * H + i) + ld<T>(bHn, i)) * derivative<T>(ra, ld<T>(aG, i), r);
      const cZ = (h - ni) * derivative<T>(ra, ld<T>(aG, H + i), z);
      if (!dense) {
        st<T>(jac, i, cN * ld<T>(diag, 2 * H + i) + cR * ld<T>(diag, i) + cZ * ld<T>(diag, H + i) + z);
        continue;
      }
      const row = at<T>(jac, i * H);
      combine3<T>(H, cN, at<T>(wn, i * H), cR, at<T>(wr, i * H), cZ, at<T>(wz, i * H), row);
      st<T>(row, i, ld<T>(row, i) + z);
    }
    return;
  }
  // ∂aN/∂h = W_hn diag(r) + W_hn diag(q) W_hr, q = h ra'(aR);
  // J = diag(z) + diag(cZ) W_hz + diag(gN) (W_hn diag(r) + W_hn diag(q) W_hr).
  for (let k = 0; k < H; k++) st<T>(q, k, ld<T>(prev, k) * derivative<T>(ra, ld<T>(aG, k), ld<T>(g, k)));
  if (dense) {
    // P = W_hn diag(q) W_hr, row by row: P[i,:] = Σ_k (W_hn[i,k] q_k) W_hr[k,:].
    for (let i = 0; i < H; i++) {
      const Prow = at<T>(P, i * H);
      for (let j = 0; j < H; j++) st<T>(Prow, j, <T>0);
      for (let k = 0; k < H; k++) {
        const c = ld<T>(wn, i * H + k) * ld<T>(q, k);
        if (c == <T>0) continue;
        combine3<T>(H, <T>1, Prow, c, at<T>(wr, k * H), <T>0, Prow, Prow);
      }
    }
  }
  const E = ptr(d, Desc.E);
  for (let i = 0; i < H; i++) {
    const z = ld<T>(g, H + i);
    const h = ld<T>(prev, i);
    const ni = ld<T>(n, i);
    st<T>(value, i, ni + z * (h - ni));
    const gN = (<T>1 - z) * derivative<T>(act, ld<T>(aN, i), ni);
    const cZ = (h - ni) * derivative<T>(ra, ld<T>(aG, H + i), z);
    if (!dense) {
      let eq = <T>0;
      for (let k = 0; k < H; k++) eq += ld<T>(E, i * H + k) * ld<T>(q, k);
      st<T>(jac, i, z + cZ * ld<T>(diag, H + i) + gN * (ld<T>(diag, 2 * H + i) * ld<T>(g, i) + eq));
      continue;
    }
    const row = at<T>(jac, i * H);
    for (let j = 0; j < H; j++) {
      st<T>(row, j, gN * (ld<T>(wn, i * H + j) * ld<T>(g, j) + ld<T>(P, i * H + j)) + cZ * ld<T>(wz, i * H + j));
    }
    st<T>(row, i, ld<T>(row, i) + z);
  }
}

// ---- LSTM (state [h, c]) -----------------------------------------------------------------------

function lstmStep<T>(d: usize, prev: usize, x: usize, out: usize): void {
  const H = <i32>slot(d, Desc.H);
  const act = <i32>slot(d, Desc.ACT);
  const ra = <i32>slot(d, Desc.RA);
  const pre = ptr(d, Desc.SCRATCH);
  matvec<T>(ptr(d, Desc.WHH_T), 4 * H, 0, 4 * H, H, prev, pre);
  for (let k = 0; k < H; k++) {
    const i = activate<T>(ra, ld<T>(x, k) + ld<T>(pre, k));
    const f = activate<T>(ra, ld<T>(x, H + k) + ld<T>(pre, H + k));
    const gg = activate<T>(act, ld<T>(x, 2 * H + k) + ld<T>(pre, 2 * H + k));
    const o = activate<T>(ra, ld<T>(x, 3 * H + k) + ld<T>(pre, 3 * H + k));
    const c = f * ld<T>(prev, H + k) + i * gg;
    st<T>(out, k, o * activate<T>(act, c));
    st<T>(out, H + k, c);
  }
}

function lstmLinearize<T>(d: usize, prev: usize, x: usize, value: usize, jac: usize, dense: bool): void {
  const H = <i32>slot(d, Desc.H);
  const D = 2 * H;
  const act = <i32>slot(d, Desc.ACT);
  const ra = <i32>slot(d, Desc.RA);
  const W = ptr(d, Desc.WHH);
  const diag = ptr(d, Desc.DIAG);
  const pre = ptr(d, Desc.SCRATCH);
  matvec<T>(ptr(d, Desc.WHH_T), 4 * H, 0, 4 * H, H, prev, pre);
  for (let k = 0; k < H; k++) {
    const aI = ld<T>(x, k) + ld<T>(pre, k);
    const aF = ld<T>(x, H + k) + ld<T>(pre, H + k);
    const aG = ld<T>(x, 2 * H + k) + ld<T>(pre, 2 * H + k);
    const aO = ld<T>(x, 3 * H + k) + ld<T>(pre, 3 * H + k);
    const i = activate<T>(ra, aI);
    const f = activate<T>(ra, aF);
    const gg = activate<T>(act, aG);
    const o = activate<T>(ra, aO);
    const c = ld<T>(prev, H + k);
    const c2 = f * c + i * gg;
    const tc = activate<T>(act, c2);
    st<T>(value, k, o * tc);
    st<T>(value, H + k, c2);
    const ci = gg * derivative<T>(ra, aI, i);
    const cf = c * derivative<T>(ra, aF, f);
    const cg = i * derivative<T>(act, aG, gg);
    const co = tc * derivative<T>(ra, aO, o);
    const u = o * derivative<T>(act, c2, tc);
    if (!dense) {
      st<T>(jac, k, u * (ci * ld<T>(diag, k) + cf * ld<T>(diag, H + k) + cg * ld<T>(diag, 2 * H + k)) + co * ld<T>(diag, 3 * H + k));
      st<T>(jac, H + k, f);
      continue;
    }
    // Row k (h'): u ∂c'/∂h + c_o W_ho, then diag(u f); row H + k (c'): ∂c'/∂h, then diag(f).
    const rowH = at<T>(jac, k * D);
    const rowC = at<T>(jac, (H + k) * D);
    combine3<T>(H, ci, at<T>(W, k * H), cf, at<T>(W, (H + k) * H), cg, at<T>(W, (2 * H + k) * H), rowC);
    combine3<T>(H, u, rowC, co, at<T>(W, (3 * H + k) * H), <T>0, rowC, rowH);
    for (let j = 0; j < H; j++) {
      st<T>(rowH, H + j, <T>0);
      st<T>(rowC, H + j, <T>0);
    }
    st<T>(rowH, H + k, u * f);
    st<T>(rowC, H + k, f);
  }
}

// ---- Elman ---------------------------------------------------------------------------------------

function elmanStep<T>(d: usize, prev: usize, x: usize, out: usize): void {
  const H = <i32>slot(d, Desc.H);
  const act = <i32>slot(d, Desc.ACT);
  const rec = ptr(d, Desc.SCRATCH);
  matvec<T>(ptr(d, Desc.WHH_T), H, 0, H, H, prev, rec);
  for (let i = 0; i < H; i++) st<T>(out, i, activate<T>(act, ld<T>(x, i) + ld<T>(rec, i)));
}

function elmanLinearize<T>(d: usize, prev: usize, x: usize, value: usize, jac: usize, dense: bool): void {
  const H = <i32>slot(d, Desc.H);
  const act = <i32>slot(d, Desc.ACT);
  const W = ptr(d, Desc.WHH);
  const diag = ptr(d, Desc.DIAG);
  const rec = ptr(d, Desc.SCRATCH);
  matvec<T>(ptr(d, Desc.WHH_T), H, 0, H, H, prev, rec);
  for (let i = 0; i < H; i++) {
    const a = ld<T>(x, i) + ld<T>(rec, i);
    const y = activate<T>(act, a);
    st<T>(value, i, y);
    const dy = derivative<T>(act, a, y);
    if (!dense) {
      st<T>(jac, i, dy * ld<T>(diag, i));
      continue;
    }
    combine3<T>(H, dy, at<T>(W, i * H), <T>0, W, <T>0, W, at<T>(jac, i * H));
  }
}

// ---- dispatch ------------------------------------------------------------------------------------

@inline function stateSize(d: usize): i32 {
  const H = <i32>slot(d, Desc.H);
  return <i32>slot(d, Desc.KIND) == LSTM ? 2 * H : H;
}

@inline function step<T>(d: usize, prev: usize, x: usize, out: usize): void {
  const kind = <i32>slot(d, Desc.KIND);
  if (kind == GRU) gruStep<T>(d, prev, x, out);
  else if (kind == LSTM) lstmStep<T>(d, prev, x, out);
  else elmanStep<T>(d, prev, x, out);
}

@inline function linearizeStep<T>(d: usize, prev: usize, x: usize, value: usize, jac: usize, dense: bool): void {
  const kind = <i32>slot(d, Desc.KIND);
  if (kind == GRU) gruLinearize<T>(d, prev, x, value, jac, dense);
  else if (kind == LSTM) lstmLinearize<T>(d, prev, x, value, jac, dense);
  else elmanLinearize<T>(d, prev, x, value, jac, dense);
}

// ---- exported kernels ----------------------------------------------------------------------------

/** Drive rows `out[r] = x[r] W_ihᵀ + bias` for `rows` inputs of width `I` (`WihT` `[I, G]`). */
function project<T>(WihT: usize, bias: usize, x: usize, out: usize, rows: i32, I: i32, G: i32): void {
  for (let r = 0; r < rows; r++) {
    const o = at<T>(out, r * G);
    matvec<T>(WihT, G, 0, G, I, at<T>(x, r * I), o);
    for (let j = 0; j < G; j++) st<T>(o, j, ld<T>(o, j) + ld<T>(bias, j));
  }
}

/** Sequential steps `[start, end)` of every batch entry (`out` `[B, T, D]`, `drive` `[B, T, G]`). */
function rollout<T>(d: usize, drive: usize, init: usize, out: usize, B: i32, T: i32, start: i32, end: i32): void {
  const D = stateSize(d);
  const G = <i32>slot(d, Desc.G);
  for (let b = 0; b < B; b++) {
    for (let t = start; t < end; t++) {
      const row = b * T + t;
      const prev = t == 0 ? at<T>(init, b * D) : at<T>(out, (row - 1) * D);
      step<T>(d, prev, at<T>(drive, row * G), at<T>(out, row * D));
    }
  }
}

/** `out[r] = f(prev[r], drive[r])` for `rows` independent rows (a Jacobi sweep). */
function sweep<T>(d: usize, drive: usize, prev: usize, out: usize, rows: i32): void {
  const D = stateSize(d);
  const G = <i32>slot(d, Desc.G);
  for (let r = 0; r < rows; r++) step<T>(d, at<T>(prev, r * D), at<T>(drive, r * G), at<T>(out, r * D));
}

/**
 * Linearises steps `[start, start + n)` of every batch entry around the states: Jacobians into
 * `jac`, defects `f(s_{t−1}) − s_t` into `defect`. `states`, `jac` and `defect` point at step
 * `start` of entry 0 and hold `stride` steps per entry; `drive` points at step 0 of entry 0 (`T`
 * steps per entry); step 0 is entered from `init` (`[B, D]`). The residual `max |defect|` (NaN if
 * any is NaN) and `Σ defect²` go to `result[0]`, `result[1]` (f64).
 */
function linearize<T>(
  d: usize,
  drive: usize,
  states: usize,
  init: usize,
  jac: usize,
  defect: usize,
  B: i32,
  n: i32,
  stride: i32,
  T: i32,
  start: i32,
  dense: bool,
  result: usize,
): void {
  const D = stateSize(d);
  const G = <i32>slot(d, Desc.G);
  const jacSize = dense ? D * D : D;
  const value = ptr(d, Desc.VALUE);
  let residual: f64 = 0;
  let sumSquares: f64 = 0;
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < n; j++) {
      const row = b * stride + j;
      const prev = j > 0 ? at<T>(states, (row - 1) * D) : start == 0 ? at<T>(init, b * D) : states - (<usize>D << alignof<T>()) + (<usize>(b * stride * D) << alignof<T>());
      linearizeStep<T>(d, prev, at<T>(drive, (b * T + start + j) * G), value, at<T>(jac, row * jacSize), dense);
      for (let i = 0; i < D; i++) {
        const e = ld<T>(value, i) - ld<T>(states, row * D + i);
        st<T>(defect, row * D + i, e);
        const a = <f64>abs<T>(e);
        if (!isNaN(residual) && !(a <= residual)) residual = a;
        sumSquares += a * a;
      }
    }
  }
  store<f64>(result, residual);
  store<f64>(result, sumSquares, 8);
}

export function project32(WihT: usize, bias: usize, x: usize, out: usize, rows: i32, I: i32, G: i32): void {
  project<f32>(WihT, bias, x, out, rows, I, G);
}
export function project64(WihT: usize, bias: usize, x: usize, out: usize, rows: i32, I: i32, G: i32): void {
  project<f64>(WihT, bias, x, out, rows, I, G);
}
export function rollout32(d: usize, drive: usize, init: usize, out: usize, B: i32, T: i32, start: i32, end: i32): void {
  rollout<f32>(d, drive, init, out, B, T, start, end);
}
export function rollout64(d: usize, drive: usize, init: usize, out: usize, B: i32, T: i32, start: i32, end: i32): void {
  rollout<f64>(d, drive, init, out, B, T, start, end);
}
export function sweep32(d: usize, drive: usize, prev: usize, out: usize, rows: i32): void {
  sweep<f32>(d, drive, prev, out, rows);
}
export function sweep64(d: usize, drive: usize, prev: usize, out: usize, rows: i32): void {
  sweep<f64>(d, drive, prev, out, rows);
}
export function linearize32(
  d: usize, drive: usize, states: usize, init: usize, jac: usize, defect: usize,
  B: i32, n: i32, stride: i32, T: i32, start: i32, dense: bool, result: usize,
): void {
  linearize<f32>(d, drive, states, init, jac, defect, B, n, stride, T, start, dense, result);
}
export function linearize64(
  d: usize, drive: usize, states: usize, init: usize, jac: usize, defect: usize,
  B: i32, n: i32, stride: i32, T: i32, start: i32, dense: bool, result: usize,
): void {
  linearize<f64>(d, drive, states, init, jac, defect, B, n, stride, T, start, dense, result);
}

// ---- adjoint (reverse) sweep: the exact gradient of L = Σ ḡ ⊙ s at a trajectory ------------------
//
// Three passes per window of steps, as core's host vector–Jacobian products (packages/core/src/
// grad/host-vjp.ts) in the same order of operations: `adjointTape` recomputes each step's gates at
// the trajectory, independent in time (threads split steps), and keeps the coefficients the chain
// rule needs; `adjointSweep` runs the recurrence μ_t = ḡ_t + A_{t+1}ᵀ μ_{t+1} backwards — per step
// elementwise products and one product with W_hhᵀ, the only sequential work (threads split batch
// entries) — and writes the cotangents of the gate pre-activations; `outerAccumulate` and
// `inputGrad` turn those into ∂L/∂W, ∂L/∂b (threads split gate rows) and ∂L/∂u (threads split steps).
//
// Tape rows (K values per step):
//   GRU, resetAfter:  [cR, cZ, gN·r, z, gN]        (K = 5H)
//   GRU, reset first: [cZ, gN, z, r, cq, r ⊙ h]    (K = 6H; cq = h·ra'(aR))
//   LSTM:             [u, ci, cf, cg, co, f]        (K = 6H; u = o·act'(c'))
//   Elman:            [act'(a)]                     (K = H)
// where gN = (1 − z)·act'(aN), cZ = (h − n)·ra'(aZ), cR = gN·(W_hn h + b_hn)·ra'(aR) — the
// coefficients of the linearisation above.

/** Coefficients per step of the adjoint tape (see above). */
@inline function tapeWidth(d: usize): i32 {
  const H = <i32>slot(d, Desc.H);
  const kind = <i32>slot(d, Desc.KIND);
  if (kind == GRU) return slot(d, Desc.RESET_AFTER) != 0 ? 5 * H : 6 * H;
  return kind == LSTM ? 6 * H : H;
}

function gruTape<T>(d: usize, prev: usize, x: usize, tape: usize): void {
  gruForward<T>(d, prev, x);
  const H = <i32>slot(d, Desc.H);
  const resetAfter = slot(d, Desc.RESET_AFTER) != 0;
  const act = <i32>slot(d, Desc.ACT);
  const ra = <i32>slot(d, Desc.RA);
  const bHn = ptr(d, Desc.B_HN);
  const rec = ptr(d, Desc.SCRATCH);
  const aG = at<T>(rec, 3 * H);
  const g = at<T>(aG, 2 * H);
  const rh = at<T>(g, 2 * H);
  const aN = at<T>(rh, H);
  const n = at<T>(aN, H);
  for (let i = 0; i < H; i++) {
    const r = ld<T>(g, i);
    const z = ld<T>(g, H + i);
    const h = ld<T>(prev, i);
    const ni = ld<T>(n, i);
    const gN = (<T>1 - z) * derivative<T>(act, ld<T>(aN, i), ni);
    const cZ = (h - ni) * derivative<T>(ra, ld<T>(aG, H + i), z);
    const cr = derivative<T>(ra, ld<T>(aG, i), r);
    if (resetAfter) {
      st<T>(tape, i, gN * (ld<T>(rec, 2 * H + i) + ld<T>(bHn, i)) * cr);
      st<T>(tape, H + i, cZ);
      st<T>(tape, 2 * H + i, gN * r);
      st<T>(tape, 3 * H + i, z);
      st<T>(tape, 4 * H + i, gN);
    } else {
      st<T>(tape, i, cZ);
      st<T>(tape, H + i, gN);
      st<T>(tape, 2 * H + i, z);
      st<T>(tape, 3 * H + i, r);
      st<T>(tape, 4 * H + i, h * cr);
      st<T>(tape, 5 * H + i, ld<T>(rh, i));
    }
  }
}

function lstmTape<T>(d: usize, prev: usize, x: usize, tape: usize): void {
  const H = <i32>slot(d, Desc.H);
  const act = <i32>slot(d, Desc.ACT);
  const ra = <i32>slot(d, Desc.RA);
  const pre = ptr(d, Desc.SCRATCH);
  matvec<T>(ptr(d, Desc.WHH_T), 4 * H, 0, 4 * H, H, prev, pre);
  for (let k = 0; k < H; k++) {
    const aI = ld<T>(x, k) + ld<T>(pre, k);
    const aF = ld<T>(x, H + k) + ld<T>(pre, H + k);
    const aG = ld<T>(x, 2 * H + k) + ld<T>(pre, 2 * H + k);
    const aO = ld<T>(x, 3 * H + k) + ld<T>(pre, 3 * H + k);
    const i = activate<T>(ra, aI);
    const f = activate<T>(ra, aF);
    const gg = activate<T>(act, aG);
    const o = activate<T>(ra, aO);
    const c = ld<T>(prev, H + k);
    const c2 = f * c + i * gg;
    const tc = activate<T>(act, c2);
    st<T>(tape, k, o * derivative<T>(act, c2, tc));
    st<T>(tape, H + k, gg * derivative<T>(ra, aI, i));
    st<T>(tape, 2 * H + k, c * derivative<T>(ra, aF, f));
    st<T>(tape, 3 * H + k, i * derivative<T>(act, aG, gg));
    st<T>(tape, 4 * H + k, tc * derivative<T>(ra, aO, o));
    st<T>(tape, 5 * H + k, f);
  }
}

function elmanTape<T>(d: usize, prev: usize, x: usize, tape: usize): void {
  const H = <i32>slot(d, Desc.H);
  const act = <i32>slot(d, Desc.ACT);
  const rec = ptr(d, Desc.SCRATCH);
  matvec<T>(ptr(d, Desc.WHH_T), H, 0, H, H, prev, rec);
  for (let i = 0; i < H; i++) {
    const a = ld<T>(x, i) + ld<T>(rec, i);
    st<T>(tape, i, derivative<T>(act, a, activate<T>(act, a)));
  }
}

/**
 * Tape rows of steps `[0, n)` of every batch entry: `drive` and `prev` (the states entering each
 * step) hold `T` steps per entry, `tape` holds `Wn`; all three point at the first step wanted.
 */
function adjointTape<T>(d: usize, drive: usize, prev: usize, tape: usize, B: i32, n: i32, T: i32, Wn: i32): void {
  const D = stateSize(d);
  const G = <i32>slot(d, Desc.G);
  const K = tapeWidth(d);
  const kind = <i32>slot(d, Desc.KIND);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < n; j++) {
      const p = at<T>(prev, (b * T + j) * D);
      const x = at<T>(drive, (b * T + j) * G);
      const out = at<T>(tape, (b * Wn + j) * K);
      if (kind == GRU) gruTape<T>(d, p, x, out);
      else if (kind == LSTM) lstmTape<T>(d, p, x, out);
      else elmanTape<T>(d, p, x, out);
    }
  }
}

/**
 * The reverse recurrence over steps `n − 1 … 0` of every batch entry: μ_t = ḡ_t + carry, then
 * `dgh` (the cotangent of W_hh h + b_hh, `G` per step) and carry ← A_tᵀ μ_t (= μ_t's share that
 * reaches the state entering step t). `carry` (`[B, D]`) enters holding A_{n}ᵀ μ_{n} of the step
 * after the window (0 at the sequence's end) and leaves holding the window's first one. `dgi` (the
 * cotangent of W_ih u + b_ih) is written only for the GRU with resetAfter, where it differs from
 * `dgh` (in its candidate block). `g` holds `T` steps per entry, `tape`, `dgh`, `dgi` hold `Wn`.
 */
function adjointSweep<T>(d: usize, tape: usize, g: usize, carry: usize, dgh: usize, dgi: usize, B: i32, n: i32, T: i32, Wn: i32): void {
  const H = <i32>slot(d, Desc.H);
  const D = stateSize(d);
  const G = <i32>slot(d, Desc.G);
  const K = tapeWidth(d);
  const kind = <i32>slot(d, Desc.KIND);
  const resetAfter = slot(d, Desc.RESET_AFTER) != 0;
  const W = ptr(d, Desc.WHH); // [G, H]: μ's product with W_hhᵀ streams its rows
  const tmp = ptr(d, Desc.SCRATCH);
  for (let b = 0; b < B; b++) {
    const c = at<T>(carry, b * D);
    for (let j = n - 1; j >= 0; j--) {
      const tr = at<T>(tape, (b * Wn + j) * K);
      const gr = at<T>(g, (b * T + j) * D);
      const hr = at<T>(dgh, (b * Wn + j) * G);
      for (let i = 0; i < D; i++) st<T>(c, i, ld<T>(gr, i) + ld<T>(c, i)); // c = μ_t
      if (kind == GRU && resetAfter) {
        const ir = at<T>(dgi, (b * Wn + j) * G);
        for (let i = 0; i < H; i++) {
          const m = ld<T>(c, i);
          const dr = m * ld<T>(tr, i);
          const dz = m * ld<T>(tr, H + i);
          st<T>(hr, i, dr);
          st<T>(hr, H + i, dz);
          st<T>(hr, 2 * H + i, m * ld<T>(tr, 2 * H + i));
          st<T>(ir, i, dr);
          st<T>(ir, H + i, dz);
          st<T>(ir, 2 * H + i, m * ld<T>(tr, 4 * H + i));
          st<T>(c, i, m * ld<T>(tr, 3 * H + i));
        }
        matvec<T>(W, H, 0, H, G, hr, tmp);
        for (let i = 0; i < H; i++) st<T>(c, i, ld<T>(c, i) + ld<T>(tmp, i));
      } else if (kind == GRU) {
        // dq = W_hnᵀ dan reaches h through r ⊙ h, and r's gate: dgr = dq ⊙ h ⊙ ra'(aR).
        for (let i = 0; i < H; i++) {
          const m = ld<T>(c, i);
          st<T>(hr, H + i, m * ld<T>(tr, i));
          st<T>(hr, 2 * H + i, m * ld<T>(tr, H + i));
          st<T>(c, i, m * ld<T>(tr, 2 * H + i));
        }
        matvec<T>(at<T>(W, 2 * H * H), H, 0, H, H, at<T>(hr, 2 * H), tmp);
        for (let i = 0; i < H; i++) {
          const dq = ld<T>(tmp, i);
          st<T>(hr, i, dq * ld<T>(tr, 4 * H + i));
          st<T>(c, i, ld<T>(c, i) + dq * ld<T>(tr, 3 * H + i));
        }
        matvec<T>(W, H, 0, H, 2 * H, hr, tmp);
        for (let i = 0; i < H; i++) st<T>(c, i, ld<T>(c, i) + ld<T>(tmp, i));
      } else if (kind == LSTM) {
        for (let k = 0; k < H; k++) {
          const mh = ld<T>(c, k);
          const dc = ld<T>(c, H + k) + mh * ld<T>(tr, k);
          st<T>(hr, k, dc * ld<T>(tr, H + k));
          st<T>(hr, H + k, dc * ld<T>(tr, 2 * H + k));
          st<T>(hr, 2 * H + k, dc * ld<T>(tr, 3 * H + k));
          st<T>(hr, 3 * H + k, mh * ld<T>(tr, 4 * H + k));
          st<T>(c, H + k, dc * ld<T>(tr, 5 * H + k));
        }
        matvec<T>(W, H, 0, H, G, hr, c);
      } else {
        for (let i = 0; i < H; i++) st<T>(hr, i, ld<T>(c, i) * ld<T>(tr, i));
        matvec<T>(W, H, 0, H, H, hr, c);
      }
    }
  }
}

/** Rows of a reduction block in {@link outerAccumulate}: its strip of X stays in the first-level cache. */
const OUTER_BLOCK = 128;

/**
 * `out[g, k] += Σ_{b,r} A[b, r, g]·X[b, r, k]` for gate rows `g ∈ [g0, g1)` (`out` `[·, K]`), and
 * `bias[g] += Σ A[b, r, g]` when `bias` ≠ 0: a parameter's gradient from its output cotangents `A`
 * (row stride `lda`, entry stride `aBatch`) and the rows it multiplied, `X` (`ldx`, `xBatch`), over
 * `n` steps of `B` entries. Tiles of two gate rows by four vectors stay in registers while a block
 * of rows streams by.
 */
function outerAccumulate<T>(A: usize, lda: i32, g0: i32, g1: i32, X: usize, ldx: i32, K: i32, B: i32, n: i32, aBatch: i32, xBatch: i32, out: usize, bias: usize): void {
  const L = 16 / sizeof<T>();
  for (let b = 0; b < B; b++) {
    const Ab = at<T>(A, b * aBatch);
    const Xb = at<T>(X, b * xBatch);
    for (let r0 = 0; r0 < n; r0 += OUTER_BLOCK) {
      const r1 = min(n, r0 + OUTER_BLOCK);
      let j = 0;
      for (; j + 4 * L <= K; j += 4 * L) {
        let g = g0;
        for (; g + 1 < g1; g += 2) {
          const o0 = at<T>(out, g * K + j);
          const o1 = at<T>(out, (g + 1) * K + j);
          let p0 = v128.load(o0);
          let p1 = v128.load(o0, 16);
          let p2 = v128.load(o0, 32);
          let p3 = v128.load(o0, 48);
          let q0 = v128.load(o1);
          let q1 = v128.load(o1, 16);
          let q2 = v128.load(o1, 32);
          let q3 = v128.load(o1, 48);
          for (let r = r0; r < r1; r++) {
            const a = at<T>(Ab, r * lda + g);
            const a0 = v128.splat<T>(load<T>(a));
            const a1 = v128.splat<T>(load<T>(a, sizeof<T>()));
            const x = at<T>(Xb, r * ldx + j);
            const x0 = v128.load(x);
            const x1 = v128.load(x, 16);
            const x2 = v128.load(x, 32);
            const x3 = v128.load(x, 48);
            p0 = v128.add<T>(p0, v128.mul<T>(a0, x0));
            p1 = v128.add<T>(p1, v128.mul<T>(a0, x1));
            p2 = v128.add<T>(p2, v128.mul<T>(a0, x2));
            p3 = v128.add<T>(p3, v128.mul<T>(a0, x3));
            q0 = v128.add<T>(q0, v128.mul<T>(a1, x0));
            q1 = v128.add<T>(q1, v128.mul<T>(a1, x1));
            q2 = v128.add<T>(q2, v128.mul<T>(a1, x2));
            q3 = v128.add<T>(q3, v128.mul<T>(a1, x3));
          }
          v128.store(o0, p0);
          v128.store(o0, p1, 16);
          v128.store(o0, p2, 32);
          v128.store(o0, p3, 48);
          v128.store(o1, q0);
          v128.store(o1, q1, 16);
          v128.store(o1, q2, 32);
          v128.store(o1, q3, 48);
        }
        for (; g < g1; g++) outerStrip<T>(Ab, lda, g, Xb, ldx, j, 4 * L, r0, r1, at<T>(out, g * K + j));
      }
      for (; j < K; j++) {
        for (let g = g0; g < g1; g++) {
          let s = ld<T>(out, g * K + j);
          for (let r = r0; r < r1; r++) s += ld<T>(Ab, r * lda + g) * ld<T>(Xb, r * ldx + j);
          st<T>(out, g * K + j, s);
        }
      }
    }
    if (bias != 0) {
      for (let g = g0; g < g1; g++) {
        let s = ld<T>(bias, g);
        for (let r = 0; r < n; r++) s += ld<T>(Ab, r * lda + g);
        st<T>(bias, g, s);
      }
    }
  }
}

/** One gate row's strip of `w` (a multiple of the lanes) in {@link outerAccumulate}, vector by vector. */
@inline function outerStrip<T>(Ab: usize, lda: i32, g: i32, Xb: usize, ldx: i32, j: i32, w: i32, r0: i32, r1: i32, o: usize): void {
  const L = 16 / sizeof<T>();
  for (let v = 0; v < w; v += L) {
    let p = v128.load(at<T>(o, v));
    for (let r = r0; r < r1; r++) p = v128.add<T>(p, v128.mul<T>(v128.splat<T>(ld<T>(Ab, r * lda + g)), v128.load(at<T>(Xb, r * ldx + j + v))));
    v128.store(at<T>(o, v), p);
  }
}

/** `du[b, j] = W_ihᵀ dgi[b, j]` for steps `[0, n)` of every entry (`W_ih` `[G, I]`; `dgi` holds `Wn` steps per entry, `du` `T`). */
function inputGrad<T>(Wih: usize, dgi: usize, du: usize, B: i32, n: i32, Wn: i32, T: i32, G: i32, I: i32): void {
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < n; j++) matvec<T>(Wih, I, 0, I, G, at<T>(dgi, (b * Wn + j) * G), at<T>(du, (b * T + j) * I));
  }
}

export function adjointTape32(d: usize, drive: usize, prev: usize, tape: usize, B: i32, n: i32, T: i32, Wn: i32): void {
  adjointTape<f32>(d, drive, prev, tape, B, n, T, Wn);
}
export function adjointTape64(d: usize, drive: usize, prev: usize, tape: usize, B: i32, n: i32, T: i32, Wn: i32): void {
  adjointTape<f64>(d, drive, prev, tape, B, n, T, Wn);
}
export function adjointSweep32(d: usize, tape: usize, g: usize, carry: usize, dgh: usize, dgi: usize, B: i32, n: i32, T: i32, Wn: i32): void {
  adjointSweep<f32>(d, tape, g, carry, dgh, dgi, B, n, T, Wn);
}
export function adjointSweep64(d: usize, tape: usize, g: usize, carry: usize, dgh: usize, dgi: usize, B: i32, n: i32, T: i32, Wn: i32): void {
  adjointSweep<f64>(d, tape, g, carry, dgh, dgi, B, n, T, Wn);
}
export function outerAccumulate32(
  A: usize, lda: i32, g0: i32, g1: i32, X: usize, ldx: i32, K: i32, B: i32, n: i32, aBatch: i32, xBatch: i32, out: usize, bias: usize,
): void {
  outerAccumulate<f32>(A, lda, g0, g1, X, ldx, K, B, n, aBatch, xBatch, out, bias);
}
export function outerAccumulate64(
  A: usize, lda: i32, g0: i32, g1: i32, X: usize, ldx: i32, K: i32, B: i32, n: i32, aBatch: i32, xBatch: i32, out: usize, bias: usize,
): void {
  outerAccumulate<f64>(A, lda, g0, g1, X, ldx, K, B, n, aBatch, xBatch, out, bias);
}
export function inputGrad32(Wih: usize, dgi: usize, du: usize, B: i32, n: i32, Wn: i32, T: i32, G: i32, I: i32): void {
  inputGrad<f32>(Wih, dgi, du, B, n, Wn, T, G, I);
}
export function inputGrad64(Wih: usize, dgi: usize, du: usize, B: i32, n: i32, Wn: i32, T: i32, G: i32, I: i32): void {
  inputGrad<f64>(Wih, dgi, du, B, n, Wn, T, G, I);
}

/** The first byte after the module's static data: JavaScript's allocator starts above it. */
export const heapBase: usize = __heap_base;

// ---- sequence and elementwise primitives -------------------------------------------------------

/**
 * Diagonal linear recurrence per (batch, channel), one pass over time with the channels in SIMD
 * lanes: `s_t = a_t ⊙ s_{t−1} + b_t` from `s_0 = init` (reverse: from the last step backwards).
 * On one core the sequential recurrence does the least work; the parallel backends scan.
 */
function scanDiagonal<T>(a: usize, b: usize, init: usize, out: usize, B: i32, T: i32, D: i32, reverse: bool): void {
  const L = 16 / sizeof<T>();
  for (let bi = 0; bi < B; bi++) {
    let prev = at<T>(init, bi * D);
    for (let k = 0; k < T; k++) {
      const t = reverse ? T - 1 - k : k;
      const row = (bi * T + t) * D;
      const ar = at<T>(a, row);
      const br = at<T>(b, row);
      const o = at<T>(out, row);
      let j = 0;
      for (; j + L <= D; j += L) {
        const v = v128.add<T>(v128.mul<T>(v128.load(at<T>(ar, j)), v128.load(at<T>(prev, j))), v128.load(at<T>(br, j)));
        v128.store(at<T>(o, j), v);
      }
      for (; j < D; j++) st<T>(o, j, ld<T>(ar, j) * ld<T>(prev, j) + ld<T>(br, j));
      prev = o;
    }
  }
}

/** `out = x op y` elementwise over `n` values; op 0 add, 1 sub, 2 mul. */
function elementwise<T>(op: i32, x: usize, y: usize, out: usize, n: i32): void {
  const L = 16 / sizeof<T>();
  let i = 0;
  for (; i + L <= n; i += L) {
    const u = v128.load(at<T>(x, i));
    const v = v128.load(at<T>(y, i));
    v128.store(at<T>(out, i), op == 0 ? v128.add<T>(u, v) : op == 1 ? v128.sub<T>(u, v) : v128.mul<T>(u, v));
  }
  for (; i < n; i++) {
    const u = ld<T>(x, i);
    const v = ld<T>(y, i);
    st<T>(out, i, op == 0 ? u + v : op == 1 ? u - v : u * v);
  }
}

/**
 * NaN → 0, values beyond `±bound` → `±bound`; counts the non-finite values and the finite ones
 * clipped into `result[0]`, `result[1]` (f64).
 */
function sanitize<T>(x: usize, out: usize, n: i32, bound: f64, result: usize): void {
  const hi = <T>bound;
  let bad: f64 = 0;
  let clipped: f64 = 0;
  for (let i = 0; i < n; i++) {
    const v = ld<T>(x, i);
    if (isNaN<T>(v)) {
      st<T>(out, i, <T>0);
      bad++;
    } else if (v > hi || v < -hi) {
      if (isFinite<T>(v)) clipped++;
      else bad++;
      st<T>(out, i, v > <T>0 ? hi : -hi);
    } else st<T>(out, i, v);
  }
  store<f64>(result, bad);
  store<f64>(result, clipped, 8);
}

/** `max |x − y|` (or `max |x|` when `y` is 0) over `n` values; NaN when any difference is NaN. */
function maxAbsDiff<T>(x: usize, y: usize, n: i32): f64 {
  const L = 16 / sizeof<T>();
  let acc = v128.splat<T>(<T>0);
  let i = 0;
  if (y != 0) {
    for (; i + L <= n; i += L) acc = v128.max<T>(acc, v128.abs<T>(v128.sub<T>(v128.load(at<T>(x, i)), v128.load(at<T>(y, i)))));
  } else {
    for (; i + L <= n; i += L) acc = v128.max<T>(acc, v128.abs<T>(v128.load(at<T>(x, i))));
  }
  // Lanes, then the tail; f64.max propagates NaN.
  let m: f64 = 0;
  for (let l = 0; l < L; l++) m = max<f64>(m, laneOf<T>(acc, l));
  for (; i < n; i++) m = max<f64>(m, <f64>abs<T>(ld<T>(x, i) - (y != 0 ? ld<T>(y, i) : <T>0)));
  return m;
}

@inline function laneOf<T>(v: v128, l: i32): f64 {
  if (sizeof<T>() == 4) {
    if (l == 0) return <f64>f32x4.extract_lane(v, 0);
    if (l == 1) return <f64>f32x4.extract_lane(v, 1);
    if (l == 2) return <f64>f32x4.extract_lane(v, 2);
    return <f64>f32x4.extract_lane(v, 3);
  }
  return l == 0 ? f64x2.extract_lane(v, 0) : f64x2.extract_lane(v, 1);
}

/** `Σ (x − y)²` over `n` values, accumulated in f64. */
function sumSquaredDiff<T>(x: usize, y: usize, n: i32): f64 {
  let s: f64 = 0;
  for (let i = 0; i < n; i++) {
    const e = <f64>ld<T>(x, i) - <f64>ld<T>(y, i);
    s += e * e;
  }
  return s;
}

export function scanDiagonal32(a: usize, b: usize, init: usize, out: usize, B: i32, T: i32, D: i32, reverse: bool): void {
  scanDiagonal<f32>(a, b, init, out, B, T, D, reverse);
}
export function scanDiagonal64(a: usize, b: usize, init: usize, out: usize, B: i32, T: i32, D: i32, reverse: bool): void {
  scanDiagonal<f64>(a, b, init, out, B, T, D, reverse);
}
export function elementwise32(op: i32, x: usize, y: usize, out: usize, n: i32): void {
  elementwise<f32>(op, x, y, out, n);
}
export function elementwise64(op: i32, x: usize, y: usize, out: usize, n: i32): void {
  elementwise<f64>(op, x, y, out, n);
}
export function sanitize32(x: usize, out: usize, n: i32, bound: f64, result: usize): void {
  sanitize<f32>(x, out, n, bound, result);
}
export function sanitize64(x: usize, out: usize, n: i32, bound: f64, result: usize): void {
  sanitize<f64>(x, out, n, bound, result);
}
export function maxAbsDiff32(x: usize, y: usize, n: i32): f64 {
  return maxAbsDiff<f32>(x, y, n);
}
export function maxAbsDiff64(x: usize, y: usize, n: i32): f64 {
  return maxAbsDiff<f64>(x, y, n);
}
export function sumSquaredDiff32(x: usize, y: usize, n: i32): f64 {
  return sumSquaredDiff<f32>(x, y, n);
}
export function sumSquaredDiff64(x: usize, y: usize, n: i32): f64 {
  return sumSquaredDiff<f64>(x, y, n);
}

// ---- chunks of a diagonal scan (threads split time: local scans, then carries, then fix-ups) -----

/**
 * Phase 1 on one chunk of one sequence: the recurrence over its `T` rows from `init` (zeros for
 * every chunk but the first), and `prod = Π a_t` over the chunk (per channel).
 */
function scanChunk<T>(a: usize, b: usize, init: usize, out: usize, prod: usize, T: i32, D: i32, reverse: bool): void {
  scanDiagonal<T>(a, b, init, out, 1, T, D, reverse);
  const L = 16 / sizeof<T>();
  for (let j = 0; j < D; j++) st<T>(prod, j, <T>1);
  for (let t = 0; t < T; t++) {
    const ar = at<T>(a, t * D);
    let j = 0;
    for (; j + L <= D; j += L) v128.store(at<T>(prod, j), v128.mul<T>(v128.load(at<T>(prod, j)), v128.load(at<T>(ar, j))));
    for (; j < D; j++) st<T>(prod, j, ld<T>(prod, j) * ld<T>(ar, j));
  }
}

/**
 * Phase 3 on one chunk: adds the carried state's contribution, `out_t += (Π_{k ≤ t} a_k) ⊙ carry`
 * in processing order (`carry` is overwritten with the running product times the carry).
 */
function scanFix<T>(a: usize, out: usize, carry: usize, T: i32, D: i32, reverse: bool): void {
  const L = 16 / sizeof<T>();
  for (let k = 0; k < T; k++) {
    const t = reverse ? T - 1 - k : k;
    const ar = at<T>(a, t * D);
    const o = at<T>(out, t * D);
    let j = 0;
    for (; j + L <= D; j += L) {
      const c = v128.mul<T>(v128.load(at<T>(ar, j)), v128.load(at<T>(carry, j)));
      v128.store(at<T>(carry, j), c);
      v128.store(at<T>(o, j), v128.add<T>(v128.load(at<T>(o, j)), c));
    }
    for (; j < D; j++) {
      const c = ld<T>(ar, j) * ld<T>(carry, j);
      st<T>(carry, j, c);
      st<T>(o, j, ld<T>(o, j) + c);
    }
  }
}

export function scanChunk32(a: usize, b: usize, init: usize, out: usize, prod: usize, T: i32, D: i32, reverse: bool): void {
  scanChunk<f32>(a, b, init, out, prod, T, D, reverse);
}
export function scanChunk64(a: usize, b: usize, init: usize, out: usize, prod: usize, T: i32, D: i32, reverse: bool): void {
  scanChunk<f64>(a, b, init, out, prod, T, D, reverse);
}
export function scanFix32(a: usize, out: usize, carry: usize, T: i32, D: i32, reverse: bool): void {
  scanFix<f32>(a, out, carry, T, D, reverse);
}
export function scanFix64(a: usize, out: usize, carry: usize, T: i32, D: i32, reverse: bool): void {
  scanFix<f64>(a, out, carry, T, D, reverse);
}

// ---- dense linear recurrence ---------------------------------------------------------------------

/**
 * `s_t = A_t s_{t−1} + b_t` per batch entry, one pass over time (reverse: from the last step
 * backwards); `A_t` row-major `[D, D]`, each row a SIMD dot product with the previous state.
 */
function scanDense<T>(A: usize, b: usize, init: usize, out: usize, B: i32, T: i32, D: i32, reverse: bool): void {
  const L = 16 / sizeof<T>();
  for (let bi = 0; bi < B; bi++) {
    let prev = at<T>(init, bi * D);
    for (let k = 0; k < T; k++) {
      const t = reverse ? T - 1 - k : k;
      const row = bi * T + t;
      const Ar = at<T>(A, row * D * D);
      const o = at<T>(out, row * D);
      for (let i = 0; i < D; i++) {
        const a = at<T>(Ar, i * D);
        let acc = v128.splat<T>(<T>0);
        let j = 0;
        for (; j + L <= D; j += L) acc = v128.add<T>(acc, v128.mul<T>(v128.load(at<T>(a, j)), v128.load(at<T>(prev, j))));
        let s = <T>0;
        for (let l = 0; l < L; l++) s += <T>laneOf<T>(acc, l);
        for (; j < D; j++) s += ld<T>(a, j) * ld<T>(prev, j);
        st<T>(o, i, s + ld<T>(b, row * D + i));
      }
      prev = o;
    }
  }
}

export function scanDense32(A: usize, b: usize, init: usize, out: usize, B: i32, T: i32, D: i32, reverse: bool): void {
  scanDense<f32>(A, b, init, out, B, T, D, reverse);
}
export function scanDense64(A: usize, b: usize, init: usize, out: usize, B: i32, T: i32, D: i32, reverse: bool): void {
  scanDense<f64>(A, b, init, out, B, T, D, reverse);
}

// ---- Kalman filter and RTS smoother, one scalar model per channel (quasi-ELK) -----------------

/**
 * The filter (and with `smooth`, the RTS smoother) of `x_t = F_t x_{t−1} + b_t + N(0, q)`,
 * `y_t = x_t + N(0, r)` from `x_0 = init` known exactly, for channels `[d0, d1)` of every batch entry
 * (rows of `D` channels), in sequential passes over time with the channels in SIMD lanes:
 *   predict `m⁻ = F m + b`, `P⁻ = F² P + q`; update `m = m⁻ + P⁻/(P⁻ + r) (y − m⁻)`, `P = P⁻ r/(P⁻ + r)`;
 *   smooth `E = P F' / P⁻'`, `μ = m + E (μ' − m⁻')`, `Λ = P + E² (Λ' − P⁻')` (primes: step t + 1).
 * The smoother overwrites the filtered moments in `mean`, `variance`.
 */
function kalmanDiagonal<T>(
  F: usize, b: usize, y: usize, init: usize, mean: usize, variance: usize,
  B: i32, T: i32, D: i32, d0: i32, d1: i32, q: f64, r: f64, smooth: bool,
): void {
  const vq = v128.splat<T>(<T>q);
  const vr = v128.splat<T>(<T>r);
  const L = 16 / sizeof<T>();
  for (let bi = 0; bi < B; bi++) {
    const base = bi * T * D;
    let j = d0;
    // Vectors of channels, then single channels: one loop body for both, `W` lanes wide.
    for (; j < d1; ) {
      const wide = j + L <= d1;
      // Filter.
      for (let t = 0; t < T; t++) {
        const k = base + t * D + j;
        if (wide) {
          const mPrev = t == 0 ? v128.load(at<T>(init, bi * D + j)) : v128.load(at<T>(mean, k - D));
          const pPrev = t == 0 ? v128.splat<T>(<T>0) : v128.load(at<T>(variance, k - D));
          const f = v128.load(at<T>(F, k));
          const m1 = v128.add<T>(v128.mul<T>(f, mPrev), v128.load(at<T>(b, k)));
          const p1 = v128.add<T>(v128.mul<T>(v128.mul<T>(f, f), pPrev), vq);
          const s = v128.add<T>(p1, vr);
          v128.store(at<T>(mean, k), v128.add<T>(m1, v128.div<T>(v128.mul<T>(p1, v128.sub<T>(v128.load(at<T>(y, k)), m1)), s)));
          v128.store(at<T>(variance, k), v128.div<T>(v128.mul<T>(p1, vr), s));
        } else {
          const mPrev = t == 0 ? ld<T>(init, bi * D + j) : ld<T>(mean, k - D);
          const pPrev = t == 0 ? <T>0 : ld<T>(variance, k - D);
          const f = ld<T>(F, k);
          const m1 = f * mPrev + ld<T>(b, k);
          const p1 = f * f * pPrev + <T>q;
          const s = p1 + <T>r;
          st<T>(mean, k, m1 + (p1 * (ld<T>(y, k) - m1)) / s);
          st<T>(variance, k, (p1 * <T>r) / s);
        }
      }
      if (smooth) {
        for (let t = T - 2; t >= 0; t--) {
          const k = base + t * D + j;
          if (wide) {
            const m = v128.load(at<T>(mean, k));
            const p = v128.load(at<T>(variance, k));
            const f = v128.load(at<T>(F, k + D));
            const m1 = v128.add<T>(v128.mul<T>(f, m), v128.load(at<T>(b, k + D)));
            const p1 = v128.add<T>(v128.mul<T>(v128.mul<T>(f, f), p), vq);
            const e = v128.div<T>(v128.mul<T>(p, f), p1);
            v128.store(at<T>(mean, k), v128.add<T>(m, v128.mul<T>(e, v128.sub<T>(v128.load(at<T>(mean, k + D)), m1))));
            v128.store(at<T>(variance, k), v128.add<T>(p, v128.mul<T>(v128.mul<T>(e, e), v128.sub<T>(v128.load(at<T>(variance, k + D)), p1))));
          } else {
            const m = ld<T>(mean, k);
            const p = ld<T>(variance, k);
            const f = ld<T>(F, k + D);
            const m1 = f * m + ld<T>(b, k + D);
            const p1 = f * f * p + <T>q;
            const e = (p * f) / p1;
            st<T>(mean, k, m + e * (ld<T>(mean, k + D) - m1));
            st<T>(variance, k, p + e * e * (ld<T>(variance, k + D) - p1));
          }
        }
      }
      j += wide ? L : 1;
    }
  }
}

export function kalmanDiagonal32(
  F: usize, b: usize, y: usize, init: usize, mean: usize, variance: usize,
  B: i32, T: i32, D: i32, d0: i32, d1: i32, q: f64, r: f64, smooth: bool,
): void {
  kalmanDiagonal<f32>(F, b, y, init, mean, variance, B, T, D, d0, d1, q, r, smooth);
}
export function kalmanDiagonal64(
  F: usize, b: usize, y: usize, init: usize, mean: usize, variance: usize,
  B: i32, T: i32, D: i32, d0: i32, d1: i32, q: f64, r: f64, smooth: bool,
): void {
  kalmanDiagonal<f64>(F, b, y, init, mean, variance, B, T, D, d0, d1, q, r, smooth);
}

// ---- Kalman filter and RTS smoother with D×D transitions (ELK) ---------------------------------

/** `C = A B` (`transB`: `A Bᵀ`) for `D×D` row-major matrices. */
function matmul<T>(A: usize, B: usize, C: usize, D: i32, transB: bool): void {
  for (let i = 0; i < D; i++) {
    for (let j = 0; j < D; j++) {
      let s = <T>0;
      for (let k = 0; k < D; k++) s += ld<T>(A, i * D + k) * (transB ? ld<T>(B, j * D + k) : ld<T>(B, k * D + j));
      st<T>(C, i * D + j, s);
    }
  }
}

/** In place: the lower Cholesky factor of a symmetric positive-definite `D×D` matrix. */
function cholesky<T>(A: usize, D: i32): void {
  for (let j = 0; j < D; j++) {
    let d = ld<T>(A, j * D + j);
    for (let k = 0; k < j; k++) d -= ld<T>(A, j * D + k) * ld<T>(A, j * D + k);
    const l = <T>Math.sqrt(<f64>d);
    st<T>(A, j * D + j, l);
    for (let i = j + 1; i < D; i++) {
      let s = ld<T>(A, i * D + j);
      for (let k = 0; k < j; k++) s -= ld<T>(A, i * D + k) * ld<T>(A, j * D + k);
      st<T>(A, i * D + j, s / l);
    }
  }
}

/** In place: `X ← (L Lᵀ)⁻¹ X` for `X` `D×D` (each column solved forward, then backward). */
function cholSolve<T>(L: usize, X: usize, D: i32): void {
  for (let c = 0; c < D; c++) {
    for (let i = 0; i < D; i++) {
      let s = ld<T>(X, i * D + c);
      for (let k = 0; k < i; k++) s -= ld<T>(L, i * D + k) * ld<T>(X, k * D + c);
      st<T>(X, i * D + c, s / ld<T>(L, i * D + i));
    }
    for (let i = D - 1; i >= 0; i--) {
      let s = ld<T>(X, i * D + c);
      for (let k = i + 1; k < D; k++) s -= ld<T>(L, k * D + i) * ld<T>(X, k * D + c);
      st<T>(X, i * D + c, s / ld<T>(L, i * D + i));
    }
  }
}

/** `X ← (X + Xᵀ)/2`. */
function symmetrize<T>(X: usize, D: i32): void {
  for (let i = 0; i < D; i++) {
    for (let j = i + 1; j < D; j++) {
      const v = <T>0.5 * (ld<T>(X, i * D + j) + ld<T>(X, j * D + i));
      st<T>(X, i * D + j, v);
      st<T>(X, j * D + i, v);
    }
  }
}

/** `P⁻ = F P Fᵀ + q I` into `out` (`tmp` scratch). */
function predictCovariance<T>(F: usize, P: usize, out: usize, tmp: usize, D: i32, q: T): void {
  matmul<T>(F, P, tmp, D, false);
  matmul<T>(tmp, F, out, D, true);
  for (let i = 0; i < D; i++) st<T>(out, i * D + i, ld<T>(out, i * D + i) + q);
  symmetrize<T>(out, D);
}

/**
 * The dense filter (and with `smooth`, the RTS smoother) for one batch entry at a time, sequential
 * over time (O(D³) per step): predict `m⁻ = F m + b`, `P⁻ = F P Fᵀ + qI`; gain `K = P⁻ (P⁻ + rI)⁻¹`
 * (a Cholesky solve), `m = m⁻ + K (y − m⁻)`, `P = (I − K) P⁻`; smoother
 * `E = P F'ᵀ P⁻'⁻¹`, `μ = m + E (μ' − m⁻')`, `Λ = P + E (Λ' − P⁻') Eᵀ`. Scratch: `6 D² + 2 D`.
 */
function kalmanDense<T>(
  F: usize, b: usize, y: usize, init: usize, mean: usize, cov: usize,
  B: i32, T: i32, D: i32, q: f64, r: f64, smooth: bool, scratch: usize,
): void {
  const DD = D * D;
  const P1 = scratch;
  const S = at<T>(P1, DD);
  const K = at<T>(S, DD);
  const tmp = at<T>(K, DD);
  const tmp2 = at<T>(tmp, DD);
  const zero = at<T>(tmp2, DD);
  const m1 = at<T>(zero, DD);
  const v = at<T>(m1, D);
  for (let i = 0; i < DD; i++) st<T>(zero, i, <T>0);
  for (let bi = 0; bi < B; bi++) {
    for (let t = 0; t < T; t++) {
      const row = bi * T + t;
      const Ft = at<T>(F, row * DD);
      const mPrev = t == 0 ? at<T>(init, bi * D) : at<T>(mean, (row - 1) * D);
      const pPrev = t == 0 ? zero : at<T>(cov, (row - 1) * DD);
      for (let i = 0; i < D; i++) {
        let s = ld<T>(b, row * D + i);
        for (let k = 0; k < D; k++) s += ld<T>(Ft, i * D + k) * ld<T>(mPrev, k);
        st<T>(m1, i, s);
      }
      predictCovariance<T>(Ft, pPrev, P1, tmp, D, <T>q);
      // Kᵀ = S⁻¹ P⁻ (S and P⁻ symmetric).
      for (let i = 0; i < DD; i++) {
        st<T>(S, i, ld<T>(P1, i));
        st<T>(K, i, ld<T>(P1, i));
      }
      for (let i = 0; i < D; i++) st<T>(S, i * D + i, ld<T>(S, i * D + i) + <T>r);
      cholesky<T>(S, D);
      cholSolve<T>(S, K, D); // K now holds Kᵀ
      const m = at<T>(mean, row * D);
      for (let i = 0; i < D; i++) st<T>(v, i, ld<T>(y, row * D + i) - ld<T>(m1, i));
      for (let i = 0; i < D; i++) {
        let s = ld<T>(m1, i);
        for (let k = 0; k < D; k++) s += ld<T>(K, k * D + i) * ld<T>(v, k);
        st<T>(m, i, s);
      }
      // P = P⁻ − K P⁻ = P⁻ − Kᵀᵀ P⁻.
      const P = at<T>(cov, row * DD);
      for (let i = 0; i < D; i++) {
        for (let j = 0; j < D; j++) {
          let s = ld<T>(P1, i * D + j);
          for (let k = 0; k < D; k++) s -= ld<T>(K, k * D + i) * ld<T>(P1, k * D + j);
          st<T>(P, i * D + j, s);
        }
      }
      symmetrize<T>(P, D);
    }
    if (!smooth) continue;
    for (let t = T - 2; t >= 0; t--) {
      const row = bi * T + t;
      const Fn = at<T>(F, (row + 1) * DD);
      const m = at<T>(mean, row * D);
      const P = at<T>(cov, row * DD);
      predictCovariance<T>(Fn, P, P1, tmp, D, <T>q);
      // Eᵀ = P⁻'⁻¹ F' P (P and P⁻' symmetric): tmp = F' P, solved in place with the factor of P⁻'.
      matmul<T>(Fn, P, K, D, false);
      for (let i = 0; i < DD; i++) st<T>(S, i, ld<T>(P1, i));
      cholesky<T>(S, D);
      cholSolve<T>(S, K, D); // K holds Eᵀ
      // μ = m + E (μ' − (F' m + b')).
      for (let i = 0; i < D; i++) {
        let s = ld<T>(b, (row + 1) * D + i);
        for (let k = 0; k < D; k++) s += ld<T>(Fn, i * D + k) * ld<T>(m, k);
        st<T>(v, i, ld<T>(mean, (row + 1) * D + i) - s);
      }
      for (let i = 0; i < D; i++) {
        let s = <T>0;
        for (let k = 0; k < D; k++) s += ld<T>(K, k * D + i) * ld<T>(v, k);
        st<T>(m1, i, s);
      }
      for (let i = 0; i < D; i++) st<T>(m, i, ld<T>(m, i) + ld<T>(m1, i));
      // Λ = P + E (Λ' − P⁻') Eᵀ.
      const Pn = at<T>(cov, (row + 1) * DD);
      for (let i = 0; i < DD; i++) st<T>(tmp2, i, ld<T>(Pn, i) - ld<T>(P1, i));
      // tmp = E tmp2 = Kᵀ tmp2.
      for (let i = 0; i < D; i++) {
        for (let j = 0; j < D; j++) {
          let s = <T>0;
          for (let k = 0; k < D; k++) s += ld<T>(K, k * D + i) * ld<T>(tmp2, k * D + j);
          st<T>(tmp, i * D + j, s);
        }
      }
      // P += tmp Eᵀ = tmp K.
      for (let i = 0; i < D; i++) {
        for (let j = 0; j < D; j++) {
          let s = ld<T>(P, i * D + j);
          for (let k = 0; k < D; k++) s += ld<T>(tmp, i * D + k) * ld<T>(K, k * D + j);
          st<T>(P, i * D + j, s);
        }
      }
      symmetrize<T>(P, D);
    }
  }
}

export function kalmanDense32(
  F: usize, b: usize, y: usize, init: usize, mean: usize, cov: usize,
  B: i32, T: i32, D: i32, q: f64, r: f64, smooth: bool, scratch: usize,
): void {
  kalmanDense<f32>(F, b, y, init, mean, cov, B, T, D, q, r, smooth, scratch);
}
export function kalmanDense64(
  F: usize, b: usize, y: usize, init: usize, mean: usize, cov: usize,
  B: i32, T: i32, D: i32, q: f64, r: f64, smooth: bool, scratch: usize,
): void {
  kalmanDense<f64>(F, b, y, init, mean, cov, B, T, D, q, r, smooth, scratch);
}

// ---- unary elementwise ops (the op-by-op path: custom cells) ----------------------------------

@inline function logT<T>(x: T): T {
  if (sizeof<T>() == 4) return <T>Mathf.log(<f32>x);
  return <T>Math.log(<f64>x);
}
@inline function log1pT<T>(x: T): T {
  if (sizeof<T>() == 4) return <T>Mathf.log1p(<f32>x);
  return <T>Math.log1p(<f64>x);
}

/**
 * `out = op(x)` over `n` values. Codes (core's `UnaryOp`): 0 neg, 1 abs, 2 square, 3 sqrt, 4 exp,
 * 5 log, 6 tanh, 7 sigmoid, 8 hardSigmoid, 9 hardSigmoidGrad, 10 relu, 11 step, 12 softplus.
 */
function unary<T>(op: i32, x: usize, out: usize, n: i32): void {
  const L = 16 / sizeof<T>();
  let i = 0;
  if (op <= 3) {
    for (; i + L <= n; i += L) {
      const v = v128.load(at<T>(x, i));
      const r = op == 0 ? v128.neg<T>(v) : op == 1 ? v128.abs<T>(v) : op == 2 ? v128.mul<T>(v, v) : v128.sqrt<T>(v);
      v128.store(at<T>(out, i), r);
    }
  }
  for (; i < n; i++) {
    const v = ld<T>(x, i);
    let r: T;
    if (op == 0) r = -v;
    else if (op == 1) r = abs<T>(v);
    else if (op == 2) r = v * v;
    else if (op == 3) r = sqrt<T>(v);
    else if (op == 4) r = expT<T>(v);
    else if (op == 5) r = logT<T>(v);
    else if (op == 6) r = tanhT<T>(v);
    else if (op == 7) {
      // Stable both ways: exp of a non-positive number only.
      if (v >= <T>0) r = <T>1 / (<T>1 + expT<T>(-v));
      else {
        const e = expT<T>(v);
        r = e / (<T>1 + e);
      }
    } else if (op == 8) r = activate<T>(1, v);
    else if (op == 9) r = v > <T>-2.5 && v < <T>2.5 ? <T>0.2 : <T>0;
    else if (op == 10) r = v > <T>0 ? v : <T>0;
    else if (op == 11) r = v > <T>0 ? <T>1 : <T>0;
    else r = v > <T>0 ? v + log1pT<T>(expT<T>(-v)) : log1pT<T>(expT<T>(v));
    st<T>(out, i, r);
  }
}

/** `out = a·x + b` over `n` values. */
function affine<T>(x: usize, out: usize, n: i32, a: f64, b: f64): void {
  const L = 16 / sizeof<T>();
  const va = v128.splat<T>(<T>a);
  const vb = v128.splat<T>(<T>b);
  let i = 0;
  for (; i + L <= n; i += L) v128.store(at<T>(out, i), v128.add<T>(v128.mul<T>(va, v128.load(at<T>(x, i))), vb));
  for (; i < n; i++) st<T>(out, i, <T>a * ld<T>(x, i) + <T>b);
}

export function unary32(op: i32, x: usize, out: usize, n: i32): void {
  unary<f32>(op, x, out, n);
}
export function unary64(op: i32, x: usize, out: usize, n: i32): void {
  unary<f64>(op, x, out, n);
}
export function affine32(x: usize, out: usize, n: i32, a: f64, b: f64): void {
  affine<f32>(x, out, n, a, b);
}
export function affine64(x: usize, out: usize, n: i32, a: f64, b: f64): void {
  affine<f64>(x, out, n, a, b);
}
