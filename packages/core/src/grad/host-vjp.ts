/**
 * Vector–Jacobian products of one transition on host arrays, in float64: what `grad` needs from a
 * cell. For a step `s' = f(s, u; θ)` and a cotangent `w` on `s'` they give `(∂f/∂s)ᵀw`,
 * `(∂f/∂u)ᵀw` and `(∂f/∂θ)ᵀw` — analytic, never through the dense Jacobian. The built-in programs
 * (GRU, LSTM, Elman, `ar`) have them here; other cells implement {@link HostVjp} themselves
 * (Lorenz-96) or get a generic one from their dense Jacobian (`grad` builds it).
 */
import type { DType, HostArray } from '../backend.js';
import { storedAs } from '../fused/host-rnn.js';
import { type ArProgram, type CellProgram, type RnnProgram, SCALAR_ACTIVATIONS } from '../program.js';

/** A named parameter of a cell and its shape (row-major). */
export interface ParameterInfo {
  readonly name: string;
  readonly shape: readonly number[];
}

/** Where one step's vector–Jacobian products go. */
export interface VjpOutputs {
  /** Receives `(∂f/∂s)ᵀw` at `stateOffset` (`D` values, overwritten). */
  readonly state: Float64Array;
  readonly stateOffset: number;
  /** Receives `(∂f/∂u)ᵀw` at `inputOffset` (`I` values, overwritten); `null` when not wanted. */
  readonly input: Float64Array | null;
  readonly inputOffset: number;
  /** `(∂f/∂θ_k)ᵀw` is added into `parameters[k]` (one array per {@link HostVjp.parameters} entry); `null` when not wanted. */
  readonly parameters: readonly Float64Array[] | null;
}

/** A parameter's gradient, by the parameter's name. */
export interface NamedGradient extends ParameterInfo {
  readonly data: Float64Array;
}

/** Analytic vector–Jacobian products of a cell's transition, one step at a time, in float64. */
export interface HostVjp {
  readonly stateSize: number;
  readonly inputSize: number;
  /** The arrays `step` accumulates parameter gradients in (the names reported unless {@link report} renames them). */
  readonly parameters: readonly ParameterInfo[];
  /**
   * Optional: the gradients as the cell reports them, from the accumulated arrays — e.g. mapped back
   * from the program's PyTorch layout to the names and layout of the spec the cell was read from.
   * Default: the accumulated arrays under the {@link parameters} names.
   */
  report?(accumulated: readonly Float64Array[]): readonly NamedGradient[];
  /**
   * One step: the state `prev[prevOffset..+D)` entering it, its input `input[inputOffset..+I)`
   * (ignored for autonomous cells), and the cotangent `w[wOffset..+D)` on its output.
   */
  step(prev: HostArray, prevOffset: number, input: HostArray | null, inputOffset: number, w: HostArray, wOffset: number, out: VjpOutputs): void;
  /**
   * Optional: adds parameter-gradient contributions `step` buffered (products are accumulated a few
   * steps at a time, so each gradient entry is read and written once per block). Callers invoke it
   * once after their last step, before reading the parameter gradients.
   */
  flush?(): void;
}

/** The host vector–Jacobian products of a program, with its weights as `dtype` stores them. */
export function programVjp(program: CellProgram, dtype: DType): HostVjp {
  return program.kind === 'ar' ? arVjp(program, dtype) : rnnVjp(program, dtype, '');
}

/**
 * `out[outOffset + j] += Σ_g M[g, j]·v[g]` for `M` `[G, N]` row-major (a transposed product), four
 * rows at a time so that `out` is read and written once per four rows.
 */
function addTransposedProduct(M: Float64Array, G: number, N: number, v: Float64Array, out: Float64Array, outOffset: number): void {
  let g = 0;
  for (; g + 3 < G; g += 4) {
    const v0 = v[g];
    const v1 = v[g + 1];
    const v2 = v[g + 2];
    const v3 = v[g + 3];
    const r0 = g * N;
    const r1 = r0 + N;
    const r2 = r1 + N;
    const r3 = r2 + N;
    for (let j = 0; j < N; j++) out[outOffset + j] += M[r0 + j] * v0 + M[r1 + j] * v1 + M[r2 + j] * v2 + M[r3 + j] * v3;
  }
  for (; g < G; g++) {
    const vg = v[g];
    const row = g * N;
    for (let j = 0; j < N; j++) out[outOffset + j] += M[row + j] * vg;
  }
}

/** `M[g, j] += v[g]·x[xOffset + j]` (a rank-one update of a parameter gradient). */
function addOuter(M: Float64Array, v: Float64Array, G: number, x: HostArray, xOffset: number, N: number): void {
  for (let g = 0; g < G; g++) {
    const vg = v[g];
    if (vg === 0) continue;
    const row = g * N;
    for (let j = 0; j < N; j++) M[row + j] += vg * x[xOffset + j];
  }
}

function addInto(target: Float64Array, v: Float64Array): void {
  for (let j = 0; j < v.length; j++) target[j] += v[j];
}

/**
 * The backward pass through `y = M x` in one sweep over `M`'s rows (each row read once): adds
 * `Mᵀ v` into `out[outOffset..]` and `v xᵀ` into `dM` (when given).
 */
function backRows(M: Float64Array, dM: Float64Array | null, G: number, N: number, v: Float64Array, x: HostArray, xOffset: number, out: Float64Array, outOffset: number): void {
  if (!dM) {
    addTransposedProduct(M, G, N, v, out, outOffset);
    return;
  }
  for (let g = 0; g < G; g++) {
    const vg = v[g];
    if (vg === 0) continue;
    const row = g * N;
    for (let j = 0; j < N; j++) {
      out[outOffset + j] += M[row + j] * vg;
      dM[row + j] += vg * x[xOffset + j];
    }
  }
}

/** `out[g] = Σ_j M[g, j]·x[xOffset + j] + bias[g]` (four partial sums: the adds pipeline). */
function affineRows(M: Float64Array, G: number, N: number, x: HostArray, xOffset: number, bias: Float64Array, out: Float64Array): void {
  const N4 = N - (N % 4);
  for (let g = 0; g < G; g++) {
    const row = g * N;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let j = 0;
    for (; j < N4; j += 4) {
      a0 += M[row + j] * x[xOffset + j];
      a1 += M[row + j + 1] * x[xOffset + j + 1];
      a2 += M[row + j + 2] * x[xOffset + j + 2];
      a3 += M[row + j + 3] * x[xOffset + j + 3];
    }
    for (; j < N; j++) a0 += M[row + j] * x[xOffset + j];
    out[g] = bias[g] + (a0 + a1 + (a2 + a3));
  }
}

/**
 * Rank-one updates `dM += v xᵀ` (`dM` `[G, N]`) buffered four at a time, so that each entry of `dM`
 * is read and written once per four updates: the parameter gradient of a weight matrix costs a
 * quarter of the memory traffic of one update per step. A new target flushes the previous one.
 */
class BufferedOuter {
  private readonly v: Float64Array;
  private readonly x: Float64Array;
  private count = 0;
  private target: Float64Array | null = null;

  constructor(
    private readonly G: number,
    private readonly N: number,
  ) {
    this.v = new Float64Array(4 * G);
    this.x = new Float64Array(4 * N);
  }

  add(target: Float64Array, v: Float64Array, x: HostArray, xOffset: number): void {
    if (this.target !== target) this.flush();
    this.target = target;
    const k = this.count++;
    this.v.set(v.subarray(0, this.G), k * this.G);
    for (let j = 0; j < this.N; j++) this.x[k * this.N + j] = x[xOffset + j];
    if (this.count === 4) this.flush();
  }

  flush(): void {
    const { G, N, v, x, target, count } = this;
    this.count = 0;
    if (!target || count === 0) return;
    if (count < 4) {
      // A partial block (the sweep's end): one update at a time, never touching stale slots.
      for (let k = 0; k < count; k++) addOuter(target, v.subarray(k * G, (k + 1) * G), G, x, k * N, N);
      return;
    }
    for (let g = 0; g < G; g++) {
      const a0 = v[g];
      const a1 = v[G + g];
      const a2 = v[2 * G + g];
      const a3 = v[3 * G + g];
      const row = g * N;
      for (let j = 0; j < N; j++) target[row + j] += a0 * x[j] + a1 * x[N + j] + a2 * x[2 * N + j] + a3 * x[3 * N + j];
    }
  }
}

/** Gate blocks `G` of an RNN program: 3H (GRU), 4H (LSTM), H (Elman). */
export function gateRows(p: RnnProgram): number {
  return p.kind === 'gru' ? 3 * p.hiddenSize : p.kind === 'lstm' ? 4 * p.hiddenSize : p.hiddenSize;
}

/** An RNN program's sizes, weights as `dtype` stores them, and activations. */
function rnnParts(p: RnnProgram, dtype: DType) {
  return {
    H: p.hiddenSize,
    I: p.inputSize,
    G: gateRows(p),
    Wih: storedAs(dtype, p.weightIh),
    Whh: storedAs(dtype, p.weightHh),
    bih: storedAs(dtype, p.biasIh),
    bhh: storedAs(dtype, p.biasHh),
    act: SCALAR_ACTIVATIONS[p.activation],
    gate: SCALAR_ACTIVATIONS[p.recurrentActivation ?? 'sigmoid'],
    resetAfter: p.resetAfter ?? true,
  };
}

/** The parameters of an RNN program, in PyTorch layout (the names `grad` reports when the cell does not rename them). */
function rnnParameters(p: RnnProgram, prefix: string): ParameterInfo[] {
  const G = gateRows(p);
  return [
    { name: `${prefix}weightIh`, shape: [G, p.inputSize] },
    { name: `${prefix}weightHh`, shape: [G, p.hiddenSize] },
    { name: `${prefix}biasIh`, shape: [G] },
    { name: `${prefix}biasHh`, shape: [G] },
  ];
}

/**
 * GRU, LSTM and Elman. Parameters (in order): `weightIh [G, I]`, `weightHh [G, H]`, `biasIh [G]`,
 * `biasHh [G]`, each prefixed by `prefix`. Each step recomputes its gates, then runs the chain rule
 * backwards: the cotangents `dgi` of the input pre-activations `W_ih u + b_ih` and `dgh` of the
 * recurrent ones `W_hh h + b_hh` give every product below.
 */
function rnnVjp(p: RnnProgram, dtype: DType, prefix: string): HostVjp {
  const { H, I, G, Wih, Whh, bih, bhh, act, gate, resetAfter } = rnnParts(p, dtype);
  const D = p.stateSize;
  // The GRU candidate's recurrent block W_hn multiplies h (resetAfter) or r ⊙ h.
  const hnRows = p.kind === 'gru' && !resetAfter ? 2 * H : G;
  const Whn = Whh.subarray(2 * H * H);
  const bhn = bhh.subarray(2 * H);
  // Scratch of one step.
  const gi = new Float64Array(G);
  const gh = new Float64Array(G);
  const dgi = new Float64Array(G);
  const dgh = new Float64Array(G);
  const r = new Float64Array(H);
  const z = new Float64Array(H);
  const rh = new Float64Array(H);
  const cand = new Float64Array(H);
  const dq = new Float64Array(H);
  const recurrentGrad = new BufferedOuter(hnRows, H);

  /** The input's cotangent, the recurrent products' share of the state's, and the parameters' — from `dgi`, `dgh`. */
  const finish = (prev: HostArray, prevOffset: number, input: HostArray | null, inputOffset: number, out: VjpOutputs): void => {
    const params = out.parameters;
    addTransposedProduct(Whh, hnRows, H, dgh, out.state, out.stateOffset);
    if (params) recurrentGrad.add(params[1], dgh, prev, prevOffset);
    if (out.input && I > 0) {
      out.input.fill(0, out.inputOffset, out.inputOffset + I);
      backRows(Wih, params && input ? params[0] : null, G, I, dgi, input ?? out.input, inputOffset, out.input, out.inputOffset);
    } else if (params && input && I > 0) addOuter(params[0], dgi, G, input, inputOffset, I);
    if (!params) return;
    if (hnRows < G) addOuter(params[1].subarray(2 * H * H), dgh.subarray(2 * H), H, rh, 0, H);
    addInto(params[2], dgi);
    addInto(params[3], dgh);
  };

  const inputRows = (input: HostArray | null, inputOffset: number): void => {
    if (input && I > 0) affineRows(Wih, G, I, input, inputOffset, bih, gi);
    else gi.set(bih);
  };

  const elman: HostVjp['step'] = (prev, prevOffset, input, inputOffset, w, wOffset, out) => {
    inputRows(input, inputOffset);
    affineRows(Whh, G, H, prev, prevOffset, bhh, gh);
    for (let g = 0; g < H; g++) {
      const a = gi[g] + gh[g];
      dgi[g] = dgh[g] = w[wOffset + g] * act.derivative(a, act.value(a));
    }
    out.state.fill(0, out.stateOffset, out.stateOffset + D);
    finish(prev, prevOffset, input, inputOffset, out);
  };

  const lstm: HostVjp['step'] = (prev, prevOffset, input, inputOffset, w, wOffset, out) => {
    inputRows(input, inputOffset);
    affineRows(Whh, G, H, prev, prevOffset, bhh, gh);
    const { state, stateOffset } = out;
    state.fill(0, stateOffset, stateOffset + D);
    for (let k = 0; k < H; k++) {
      const ai = gi[k] + gh[k];
      const af = gi[H + k] + gh[H + k];
      const ag = gi[2 * H + k] + gh[2 * H + k];
      const ao = gi[3 * H + k] + gh[3 * H + k];
      const i = gate.value(ai);
      const f = gate.value(af);
      const g = act.value(ag);
      const o = gate.value(ao);
      const c = prev[prevOffset + H + k];
      const c2 = f * c + i * g;
      const tc = act.value(c2);
      const wh = w[wOffset + k];
      // c' = f c + i g, h' = o act(c'): the cell state's cotangent collects both outputs'.
      const dc2 = w[wOffset + H + k] + wh * o * act.derivative(c2, tc);
      dgi[k] = dgh[k] = dc2 * g * gate.derivative(ai, i);
      dgi[H + k] = dgh[H + k] = dc2 * c * gate.derivative(af, f);
      dgi[2 * H + k] = dgh[2 * H + k] = dc2 * i * act.derivative(ag, g);
      dgi[3 * H + k] = dgh[3 * H + k] = wh * tc * gate.derivative(ao, o);
      state[stateOffset + H + k] = dc2 * f;
    }
    finish(prev, prevOffset, input, inputOffset, out);
  };

  const gru: HostVjp['step'] = (prev, prevOffset, input, inputOffset, w, wOffset, out) => {
    inputRows(input, inputOffset);
    affineRows(Whh, 2 * H, H, prev, prevOffset, bhh, gh);
    for (let k = 0; k < H; k++) {
      r[k] = gate.value(gi[k] + gh[k]);
      z[k] = gate.value(gi[H + k] + gh[H + k]);
      rh[k] = r[k] * prev[prevOffset + k];
    }
    // cand = W_hn h + b_hn (resetAfter; r multiplies it) or W_hn (r ⊙ h) + b_hn.
    if (resetAfter) affineRows(Whn, H, H, prev, prevOffset, bhn, cand);
    else affineRows(Whn, H, H, rh, 0, bhn, cand);
    const { state, stateOffset } = out;
    for (let k = 0; k < H; k++) {
      const an = gi[2 * H + k] + (resetAfter ? r[k] * cand[k] : cand[k]);
      const n = act.value(an);
      const wk = w[wOffset + k];
      state[stateOffset + k] = wk * z[k];
      const dan = wk * (1 - z[k]) * act.derivative(an, n);
      dgi[2 * H + k] = dan;
      dgh[2 * H + k] = resetAfter ? dan * r[k] : dan; // the W_hn product's output cotangent
      dgi[H + k] = dgh[H + k] = wk * (prev[prevOffset + k] - n) * gate.derivative(gi[H + k] + gh[H + k], z[k]);
    }
    // r's cotangent: from r ⊙ cand (resetAfter), or through W_hn (r ⊙ h), which also reaches h.
    if (resetAfter) {
      for (let k = 0; k < H; k++) dgi[k] = dgh[k] = dgi[2 * H + k] * cand[k] * gate.derivative(gi[k] + gh[k], r[k]);
    } else {
      dq.fill(0);
      addTransposedProduct(Whn, H, H, dgh.subarray(2 * H), dq, 0);
      for (let k = 0; k < H; k++) {
        state[stateOffset + k] += dq[k] * r[k];
        dgi[k] = dgh[k] = dq[k] * prev[prevOffset + k] * gate.derivative(gi[k] + gh[k], r[k]);
      }
    }
    finish(prev, prevOffset, input, inputOffset, out);
  };

  const step = p.kind === 'elman' ? elman : p.kind === 'lstm' ? lstm : gru;
  return { stateSize: D, inputSize: I, parameters: rnnParameters(p, prefix), step, flush: () => recurrentGrad.flush() };
}

/** Numerically stable `log(1 + eˣ)`. */
function softplus(v: number): number {
  return v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
}

/**
 * The `ar` cell over an RNN program (see `ArProgram`): state `[x, h]`, drivers `u`. Parameters: the
 * inner cell's, prefixed `inner.`, then `readout.weight [2I, H]` and `readout.bias [2I]`.
 */
function arVjp(p: ArProgram, dtype: DType): HostVjp {
  const I = p.inputSize;
  const inner = p.inner;
  const H = inner.hiddenSize;
  const Dh = inner.stateSize;
  const D = I + Dh;
  const innerVjp = rnnVjp(inner, dtype, 'inner.');
  const W = storedAs(dtype, p.readout.weight);
  const bias = storedAs(dtype, p.readout.bias);
  const skip = p.readout.skip;
  const innerStep = innerForward(inner, dtype);
  const h2 = new Float64Array(Dh);
  const o = new Float64Array(H);
  const dml = new Float64Array(2 * I);
  const wInner = new Float64Array(Dh);
  const dO = new Float64Array(H);
  const dxInner = new Float64Array(I);
  const nInner = innerVjp.parameters.length;
  return {
    stateSize: D,
    inputSize: I,
    flush: innerVjp.flush,
    parameters: [...innerVjp.parameters, { name: 'readout.weight', shape: [2 * I, H] }, { name: 'readout.bias', shape: [2 * I] }],
    step(prev, prevOffset, input, inputOffset, w, wOffset, out) {
      innerStep(prev, prevOffset + I, prev, prevOffset, h2);
      for (let k = 0; k < H; k++) o[k] = h2[k] + (skip ? prev[prevOffset + (I === 1 ? 0 : k)] : 0);
      // x' = μ + softplus(ℓ) ⊙ u: dμ = w_x, dℓ = w_x ⊙ u ⊙ σ(ℓ), du = w_x ⊙ softplus(ℓ).
      for (let i = 0; i < I; i++) {
        let l = bias[I + i];
        for (let k = 0; k < H; k++) l += W[(I + i) * H + k] * o[k];
        const wx = w[wOffset + i];
        const u = input ? input[inputOffset + i] : 0;
        dml[i] = wx;
        dml[I + i] = wx * u * (1 / (1 + Math.exp(-l)));
        if (out.input) out.input[out.inputOffset + i] = wx * softplus(l);
      }
      // do = Wᵀ [dμ, dℓ] joins the cotangent of the inner state's first H entries.
      dO.fill(0);
      addTransposedProduct(W, 2 * I, H, dml, dO, 0);
      for (let r = 0; r < Dh; r++) wInner[r] = w[wOffset + I + r] + (r < H ? dO[r] : 0);
      const params = out.parameters;
      innerVjp.step(prev, prevOffset + I, prev, prevOffset, wInner, 0, {
        state: out.state,
        stateOffset: out.stateOffset + I,
        input: dxInner,
        inputOffset: 0,
        parameters: params ? params.slice(0, nInner) : null,
      });
      for (let i = 0; i < I; i++) out.state[out.stateOffset + i] = dxInner[i];
      if (skip) {
        // o = h'[0..H) + x (broadcast when I = 1, elementwise when I = H).
        for (let k = 0; k < H; k++) out.state[out.stateOffset + (I === 1 ? 0 : k)] += dO[k];
      }
      if (params) {
        addOuter(params[nInner], dml, 2 * I, o, 0, H);
        addInto(params[nInner + 1], dml);
      }
    },
  };
}

/** One step of an RNN program from `prev[prevOffset..]` and input `x[xOffset..]` into `out` (float64). */
function innerForward(p: RnnProgram, dtype: DType): (prev: HostArray, prevOffset: number, x: HostArray, xOffset: number, out: Float64Array) => void {
  const { H, I, G, Wih, Whh, bih, bhh, act, gate, resetAfter } = rnnParts(p, dtype);
  const gi = new Float64Array(G);
  const gh = new Float64Array(G);
  const rh = new Float64Array(H);
  return (prev, prevOffset, x, xOffset, out) => {
    affineRows(Wih, G, I, x, xOffset, bih, gi);
    if (p.kind === 'gru' && !resetAfter) {
      affineRows(Whh, 2 * H, H, prev, prevOffset, bhh, gh);
      for (let k = 0; k < H; k++) rh[k] = gate.value(gi[k] + gh[k]) * prev[prevOffset + k];
      affineRows(Whh.subarray(2 * H * H), H, H, rh, 0, bhh.subarray(2 * H), gh.subarray(2 * H));
    } else affineRows(Whh, G, H, prev, prevOffset, bhh, gh);
    for (let k = 0; k < H; k++) {
      if (p.kind === 'elman') out[k] = act.value(gi[k] + gh[k]);
      else if (p.kind === 'lstm') {
        const i = gate.value(gi[k] + gh[k]);
        const f = gate.value(gi[H + k] + gh[H + k]);
        const g = act.value(gi[2 * H + k] + gh[2 * H + k]);
        const o = gate.value(gi[3 * H + k] + gh[3 * H + k]);
        const c = f * prev[prevOffset + H + k] + i * g;
        out[H + k] = c;
        out[k] = o * act.value(c);
      } else {
        const r = gate.value(gi[k] + gh[k]);
        const z = gate.value(gi[H + k] + gh[H + k]);
        const n = act.value(gi[2 * H + k] + (resetAfter ? r * gh[2 * H + k] : gh[2 * H + k]));
        out[k] = (1 - z) * n + z * prev[prevOffset + k];
      }
    }
  };
}
