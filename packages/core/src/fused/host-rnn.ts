/**
 * Host (plain TypeScript) kernels of the {@link RnnProgram}s: one step of one sequence on flat
 * arrays — the value, and on request the Jacobian with respect to the state — computed in float64
 * from weights stored as the dtype stores them. Host-memory backends run them over their tensors'
 * storage (`bindHostProgram`); `@pelk/models` runs them in its own fused rollouts (the `ar` cell).
 * They are the reference the WebAssembly and WGSL kernels follow.
 */
import type { DType, HostArray } from '../backend.js';
import { type RnnProgram, SCALAR_ACTIVATIONS, type ScalarActivation } from '../program.js';

/** One RNN transition on host arrays. */
export interface HostRnnKernel {
  /** Width `G` of a drive row. */
  readonly driveSize: number;
  /** `D`. */
  readonly stateSize: number;
  /**
   * The drive row of one input: `out[outOff..outOff+G) = W_ih x + b`, with every bias that is
   * constant per step folded in (`x = x[xOff..xOff+I)`).
   */
  project(x: HostArray, xOff: number, out: HostArray, outOff: number): void;
  /** `out[outOff..+D) = f(prev[prevOff..+D), drive row at driveOff)`. */
  step(prev: HostArray, prevOff: number, drive: HostArray, driveOff: number, out: HostArray, outOff: number): void;
  /**
   * {@link step} into `value[valueOff..]` (float64, unrounded), and `∂f/∂prev` into `jac[jacOff..]`:
   * `D×D` row-major when `dense`, else its diagonal (`D`). With `inputJac`, also `∂f/∂x` with
   * respect to the raw input `x` of the projection (`D×I` row-major; the `ar` cell's chain rule).
   */
  linearize(
    prev: HostArray,
    prevOff: number,
    drive: HostArray,
    driveOff: number,
    value: Float64Array,
    valueOff: number,
    jac: HostArray,
    jacOff: number,
    dense: boolean,
    inputJac?: Float64Array,
  ): void;
}

/** `out[j] = a·X[xo + j] + b·Y[yo + j] + c·Z[zo + j]` for `j < n` (rows of Jacobians). */
function combine3(n: number, a: number, X: Float64Array, xo: number, b: number, Y: Float64Array, yo: number, c: number, Z: Float64Array, zo: number, out: HostArray, oo: number): void {
  for (let j = 0; j < n; j++) out[oo + j] = a * X[xo + j] + b * Y[yo + j] + c * Z[zo + j];
}

/** The host kernel of a program, with its weights as `dtype` stores them (float32-rounded for float32). */
export function hostRnnKernel(program: RnnProgram, dtype: DType): HostRnnKernel {
  switch (program.kind) {
    case 'gru':
      return gruKernel(program, dtype);
    case 'lstm':
      return lstmKernel(program, dtype);
    case 'elman':
      return elmanKernel(program, dtype);
  }
}

/** `a` as a dtype stores it: unchanged for float64, rounded to float32 for float32. */
export function storedAs(dtype: DType, a: Float64Array): Float64Array {
  return dtype === 'float64' ? a : Float64Array.from(Float32Array.from(a));
}

/** `[rows, cols]` → `[cols, rows]` (row-major). */
export function transpose(a: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

function diagonalOf(a: Float64Array, offset: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = a[offset + i * n + i];
  return out;
}

/**
 * `out[oOff + j] = Σ_k x[xOff + k] · Wt[k, colStart + j]` for `cols` outputs, with `Wt` the
 * transposed matrix (`[K, N]` row-major). Eight values of `x` are folded into each pass over the
 * output (measured fastest in V8 without SIMD, ~0.9 GMAC/s on this project's machines, vs ~0.7 for
 * dot products).
 */
export function hostMatVec(
  Wt: Float64Array,
  N: number,
  colStart: number,
  cols: number,
  K: number,
  x: HostArray,
  xOff: number,
  out: Float64Array,
  oOff: number,
): void {
  for (let j = 0; j < cols; j++) out[oOff + j] = 0;
  let k = 0;
  for (; k + 7 < K; k += 8) {
    const x0 = x[xOff + k];
    const x1 = x[xOff + k + 1];
    const x2 = x[xOff + k + 2];
    const x3 = x[xOff + k + 3];
    const x4 = x[xOff + k + 4];
    const x5 = x[xOff + k + 5];
    const x6 = x[xOff + k + 6];
    const x7 = x[xOff + k + 7];
    const r = k * N + colStart;
    for (let j = 0; j < cols; j++) {
      const c = r + j;
      out[oOff + j] +=
        x0 * Wt[c] + x1 * Wt[c + N] + x2 * Wt[c + 2 * N] + x3 * Wt[c + 3 * N] + x4 * Wt[c + 4 * N] + x5 * Wt[c + 5 * N] + x6 * Wt[c + 6 * N] + x7 * Wt[c + 7 * N];
    }
  }
  for (; k < K; k++) {
    const v = x[xOff + k];
    const r = k * N + colStart;
    for (let j = 0; j < cols; j++) out[oOff + j] += v * Wt[r + j];
  }
}

/** The input projection `W_ih x + bias` (bias already folded and stored as the dtype stores it). */
function projector(p: RnnProgram, dtype: DType, bias: Float64Array): HostRnnKernel['project'] {
  const G = bias.length;
  const I = p.inputSize;
  const wT = transpose(storedAs(dtype, p.weightIh), G, I); // [I, G]
  const b = storedAs(dtype, bias);
  const row = new Float64Array(G);
  return (x, xOff, out, outOff) => {
    hostMatVec(wT, G, 0, G, I, x, xOff, row, 0);
    for (let j = 0; j < G; j++) out[outOff + j] = row[j] + b[j];
  };
}

function gateActivation(p: RnnProgram): ScalarActivation {
  return SCALAR_ACTIVATIONS[p.recurrentActivation ?? 'sigmoid'];
}

/**
 * The bias of a program's drive rows: every bias that is constant per step. LSTM and Elman: both
 * biases. GRU: `[b_ir + b_hr, b_iz + b_hz, b_in]`, and `+ b_hn` when `resetAfter` is false (with
 * `resetAfter`, `b_hn` stays inside `r ⊙ (W_hn h + b_hn)`).
 */
export function driveBias(p: RnnProgram): Float64Array {
  const H = p.hiddenSize;
  const keepHn = p.kind === 'gru' && (p.resetAfter ?? true);
  return p.biasIh.map((v, j) => v + (keepHn && j >= 2 * H ? 0 : p.biasHh[j]));
}

/** GRU (see {@link driveBias} for the drive rows). */
function gruKernel(p: RnnProgram, dtype: DType): HostRnnKernel {
  const H = p.hiddenSize;
  const G = 3 * H;
  const resetAfter = p.resetAfter ?? true;
  const bias = driveBias(p);
  const W = storedAs(dtype, p.weightHh); // [3H, H]: W_hr, W_hz, W_hn stacked
  const Wt = transpose(W, G, H); // [H, 3H]: the product streams contiguous rows
  const bHn = storedAs(dtype, p.biasHh.slice(2 * H));
  const dR = diagonalOf(W, 0, H);
  const dZ = diagonalOf(W, H * H, H);
  const dN = diagonalOf(W, 2 * H * H, H);
  // diag(W_hn diag(q) W_hr)_i = Σ_k W_hn[i,k] q_k W_hr[k,i] = (E q)_i with E[i,k] = W_hn[i,k] W_hr[k,i].
  const E = new Float64Array(resetAfter ? 0 : H * H);
  if (!resetAfter) for (let i = 0; i < H; i++) for (let k = 0; k < H; k++) E[i * H + k] = W[(2 * H + i) * H + k] * W[k * H + i];
  const ra = gateActivation(p);
  const act = SCALAR_ACTIVATIONS[p.activation];
  const I = p.inputSize;
  const Wih = storedAs(dtype, p.weightIh); // [3H, I]: W_ir, W_iz, W_in (input Jacobians)
  // Scratch of one step.
  const rec = new Float64Array(G);
  const aG = new Float64Array(2 * H); // gate pre-activations (r, z)
  const g = new Float64Array(2 * H); // gates (r, z)
  const rh = new Float64Array(H);
  const aN = new Float64Array(H);
  const n = new Float64Array(H);
  const q = new Float64Array(H);
  const P = new Float64Array(resetAfter ? 0 : H * H);

  const forward = (prev: HostArray, prevOff: number, x: HostArray, xOff: number): void => {
    hostMatVec(Wt, G, 0, resetAfter ? G : 2 * H, H, prev, prevOff, rec, 0);
    for (let i = 0; i < 2 * H; i++) {
      const a = x[xOff + i] + rec[i];
      aG[i] = a;
      g[i] = ra.value(a);
    }
    if (!resetAfter) {
      for (let i = 0; i < H; i++) rh[i] = g[i] * prev[prevOff + i];
      hostMatVec(Wt, G, 2 * H, H, H, rh, 0, rec, 2 * H);
    }
    for (let i = 0; i < H; i++) {
      const a = x[xOff + 2 * H + i] + (resetAfter ? g[i] * (rec[2 * H + i] + bHn[i]) : rec[2 * H + i]);
      aN[i] = a;
      n[i] = act.value(a);
    }
  };

  return {
    driveSize: G,
    stateSize: H,
    project: projector(p, dtype, bias),
    step(prev, prevOff, x, xOff, out, outOff) {
      forward(prev, prevOff, x, xOff);
      for (let i = 0; i < H; i++) out[outOff + i] = n[i] + g[H + i] * (prev[prevOff + i] - n[i]);
    },
    linearize(prev, prevOff, x, xOff, value, valueOff, jac, jacOff, dense, inputJac) {
      forward(prev, prevOff, x, xOff);
      // gN = ∂h'/∂aN = (1 − z) act'(aN); cZ = ∂h'/∂aZ = (h − n) ra'(aZ); rec/aN/aG are reused below.
      if (resetAfter) {
        // J = diag(gN r) W_hn + diag(gN hN ra'(aR)) W_hr + diag(cZ) W_hz + diag(z).
        for (let i = 0; i < H; i++) {
          const r = g[i];
          const z = g[H + i];
          const h = prev[prevOff + i];
          value[valueOff + i] = n[i] + z * (h - n[i]);
          const gN = (1 - z) * act.derivative(aN[i], n[i]);
          const cN = gN * r;
          const cR = gN * (rec[2 * H + i] + bHn[i]) * ra.derivative(aG[i], r);
          const cZ = (h - n[i]) * ra.derivative(aG[H + i], z);
          // ∂h'/∂x = diag(c_r) W_ir + diag(c_z) W_iz + diag(g_n) W_in (the drive enters n unscaled by r).
          if (inputJac) combine3(I, cR, Wih, i * I, cZ, Wih, (H + i) * I, gN, Wih, (2 * H + i) * I, inputJac, i * I);
          if (!dense) {
            jac[jacOff + i] = cN * dN[i] + cR * dR[i] + cZ * dZ[i] + z;
            continue;
          }
          const row = jacOff + i * H;
          const wr = i * H;
          const wz = (H + i) * H;
          const wn = (2 * H + i) * H;
          for (let j = 0; j < H; j++) jac[row + j] = cN * W[wn + j] + cR * W[wr + j] + cZ * W[wz + j];
          jac[row + i] += z;
        }
        return;
      }
      // ∂aN/∂h = W_hn diag(r) + W_hn diag(q) W_hr with q = h ra'(aR), so
      // J = diag(z) + diag(cZ) W_hz + diag(gN) (W_hn diag(r) + W_hn diag(q) W_hr).
      for (let k = 0; k < H; k++) q[k] = prev[prevOff + k] * ra.derivative(aG[k], g[k]);
      if (dense) {
        P.fill(0);
        for (let i = 0; i < H; i++) {
          const wn = (2 * H + i) * H;
          const row = i * H;
          for (let k = 0; k < H; k++) {
            const c = W[wn + k] * q[k];
            if (c === 0) continue;
            const wr = k * H;
            for (let j = 0; j < H; j++) P[row + j] += c * W[wr + j];
          }
        }
      }
      for (let i = 0; i < H; i++) {
        const z = g[H + i];
        const h = prev[prevOff + i];
        value[valueOff + i] = n[i] + z * (h - n[i]);
        const gN = (1 - z) * act.derivative(aN[i], n[i]);
        const cZ = (h - n[i]) * ra.derivative(aG[H + i], z);
        if (inputJac) {
          // ∂h'/∂x = diag(c_z) W_iz + diag(g_n) (W_in + W_hn diag(q) W_ir).
          const row = i * I;
          for (let j = 0; j < I; j++) inputJac[row + j] = cZ * Wih[(H + i) * I + j] + gN * Wih[(2 * H + i) * I + j];
          for (let k = 0; k < H; k++) {
            const c = gN * W[(2 * H + i) * H + k] * q[k];
            if (c !== 0) for (let j = 0; j < I; j++) inputJac[row + j] += c * Wih[k * I + j];
          }
        }
        if (!dense) {
          let eq = 0;
          for (let k = 0; k < H; k++) eq += E[i * H + k] * q[k];
          jac[jacOff + i] = z + cZ * dZ[i] + gN * (dN[i] * g[i] + eq);
          continue;
        }
        const row = jacOff + i * H;
        const wz = (H + i) * H;
        const wn = (2 * H + i) * H;
        for (let j = 0; j < H; j++) jac[row + j] = gN * (W[wn + j] * g[j] + P[i * H + j]) + cZ * W[wz + j];
        jac[row + i] += z;
      }
    },
  };
}

/** LSTM on the packed state `[h, c]`; both biases join the projection. */
function lstmKernel(p: RnnProgram, dtype: DType): HostRnnKernel {
  const H = p.hiddenSize;
  const D = 2 * H;
  const G = 4 * H;
  const bias = driveBias(p);
  const W = storedAs(dtype, p.weightHh); // [4H, H]: W_hi, W_hf, W_hg, W_ho stacked
  const Wt = transpose(W, G, H);
  const diag = [0, 1, 2, 3].map((k) => diagonalOf(W, k * H * H, H));
  const ra = gateActivation(p);
  const act = SCALAR_ACTIVATIONS[p.activation];
  const I = p.inputSize;
  const Wih = storedAs(dtype, p.weightIh); // [4H, I]: W_ii, W_if, W_ig, W_io
  const pre = new Float64Array(G);
  return {
    driveSize: G,
    stateSize: D,
    project: projector(p, dtype, bias),
    step(prev, prevOff, x, xOff, out, outOff) {
      hostMatVec(Wt, G, 0, G, H, prev, prevOff, pre, 0); // W_hh h (h is the first H entries)
      for (let k = 0; k < H; k++) {
        const i = ra.value(x[xOff + k] + pre[k]);
        const f = ra.value(x[xOff + H + k] + pre[H + k]);
        const g = act.value(x[xOff + 2 * H + k] + pre[2 * H + k]);
        const o = ra.value(x[xOff + 3 * H + k] + pre[3 * H + k]);
        const c = f * prev[prevOff + H + k] + i * g;
        out[outOff + k] = o * act.value(c);
        out[outOff + H + k] = c;
      }
    },
    linearize(prev, prevOff, x, xOff, value, valueOff, jac, jacOff, dense, inputJac) {
      hostMatVec(Wt, G, 0, G, H, prev, prevOff, pre, 0);
      const [dI, dF, dG, dO] = diag;
      for (let k = 0; k < H; k++) {
        const aI = x[xOff + k] + pre[k];
        const aF = x[xOff + H + k] + pre[H + k];
        const aG = x[xOff + 2 * H + k] + pre[2 * H + k];
        const aO = x[xOff + 3 * H + k] + pre[3 * H + k];
        const i = ra.value(aI);
        const f = ra.value(aF);
        const g = act.value(aG);
        const o = ra.value(aO);
        const c = prev[prevOff + H + k];
        const c2 = f * c + i * g;
        const tc = act.value(c2);
        value[valueOff + k] = o * tc;
        value[valueOff + H + k] = c2;
        // ∂c'/∂a_i, ∂c'/∂a_f, ∂c'/∂a_g; ∂h'/∂a_o; u = ∂h'/∂c'.
        const ci = g * ra.derivative(aI, i);
        const cf = c * ra.derivative(aF, f);
        const cg = i * act.derivative(aG, g);
        const co = tc * ra.derivative(aO, o);
        const u = o * act.derivative(c2, tc);
        if (inputJac) {
          // ∂c'/∂x = Σ diag(c_*) W_i*, ∂h'/∂x = diag(u) ∂c'/∂x + diag(c_o) W_io (rows k and H + k).
          const rc = (H + k) * I;
          combine3(I, ci, Wih, k * I, cf, Wih, (H + k) * I, cg, Wih, (2 * H + k) * I, inputJac, rc);
          for (let j = 0; j < I; j++) inputJac[k * I + j] = u * inputJac[rc + j] + co * Wih[(3 * H + k) * I + j];
        }
        if (!dense) {
          jac[jacOff + k] = u * (ci * dI[k] + cf * dF[k] + cg * dG[k]) + co * dO[k];
          jac[jacOff + H + k] = f;
          continue;
        }
        // Rows k (h') and H + k (c'): ∂c'/∂h = Σ diag(c_*) W_h*, ∂h'/∂h = diag(u) ∂c'/∂h + diag(c_o) W_ho,
        // ∂h'/∂c = diag(u f), ∂c'/∂c = diag(f).
        const rowH = jacOff + k * D;
        const rowC = jacOff + (H + k) * D;
        const wi = k * H;
        const wf = (H + k) * H;
        const wg = (2 * H + k) * H;
        const wo = (3 * H + k) * H;
        for (let j = 0; j < H; j++) {
          const dc = ci * W[wi + j] + cf * W[wf + j] + cg * W[wg + j];
          jac[rowC + j] = dc;
          jac[rowH + j] = u * dc + co * W[wo + j];
          jac[rowH + H + j] = 0;
          jac[rowC + H + j] = 0;
        }
        jac[rowH + H + k] = u * f;
        jac[rowC + H + k] = f;
      }
    },
  };
}

/** Elman: `h' = act(W_ih x + b_ih + b_hh + W_hh h)`; both biases join the projection. */
function elmanKernel(p: RnnProgram, dtype: DType): HostRnnKernel {
  const H = p.hiddenSize;
  const bias = driveBias(p);
  const W = storedAs(dtype, p.weightHh);
  const Wt = transpose(W, H, H);
  const dW = diagonalOf(W, 0, H);
  const act = SCALAR_ACTIVATIONS[p.activation];
  const I = p.inputSize;
  const Wih = storedAs(dtype, p.weightIh);
  const rec = new Float64Array(H);
  return {
    driveSize: H,
    stateSize: H,
    project: projector(p, dtype, bias),
    step(prev, prevOff, x, xOff, out, outOff) {
      hostMatVec(Wt, H, 0, H, H, prev, prevOff, rec, 0);
      for (let i = 0; i < H; i++) out[outOff + i] = act.value(x[xOff + i] + rec[i]);
    },
    linearize(prev, prevOff, x, xOff, value, valueOff, jac, jacOff, dense, inputJac) {
      hostMatVec(Wt, H, 0, H, H, prev, prevOff, rec, 0);
      for (let i = 0; i < H; i++) {
        const a = x[xOff + i] + rec[i];
        const y = act.value(a);
        value[valueOff + i] = y;
        const d = act.derivative(a, y);
        if (inputJac) for (let j = 0; j < I; j++) inputJac[i * I + j] = d * Wih[i * I + j]; // diag(act') W_ih
        if (!dense) {
          jac[jacOff + i] = d * dW[i];
          continue;
        }
        const row = jacOff + i * H;
        for (let j = 0; j < H; j++) jac[row + j] = d * W[i * H + j];
      }
    },
  };
}
