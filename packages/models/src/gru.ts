/**
 * Gated recurrent unit. One implementation in PyTorch layout (gate order r, z, n) covers the
 * PyTorch, flax and Keras / tfjs-layers conventions:
 *
 *     r  = ra(W_ir x + b_ir + W_hr h + b_hr)
 *     z  = ra(W_iz x + b_iz + W_hz h + b_hz)
 *     n  = act(W_in x + b_in + r ⊙ (W_hn h + b_hn))      resetAfter = true  (PyTorch, flax, Keras 3)
 *     n  = act(W_in x + b_in + W_hn (r ⊙ h) + b_hn)      resetAfter = false (tfjs-layers, Keras 2)
 *     h' = (1 − z) ⊙ n + z ⊙ h
 *
 * `ra` is the recurrent activation (sigmoid or hardSigmoid), `act` the candidate activation.
 */
import {
  type BindContext,
  type BoundCell,
  type ComputeBackend,
  type RnnProgram,
  InvalidArgumentError,
  type Tensor,
  checkKnownKeys,
  describeValue,
} from '@pelk/core';
import { type ActivationName, activation } from './activations.js';
import { rowScaledSum, scaleCols, scaleRows, sum, weightedSum } from './bound.js';
import {
  concatArrays,
  diagonal,
  fieldName,
  parseArray,
  randomOptions,
  readObject,
  readWeight,
  rows,
  toNested,
  transpose,
  uniform,
} from './host.js';
import { type RnnCore, bindRnn, registerCore, rnnProgram } from './rnn-core.js';
import {
  KERAS_WEIGHT_KEYS,
  RANDOM_KEYS,
  SIZE_KEYS,
  type SizeHints,
  kerasToTorch,
  readKerasWeights,
  readTorchWeights,
  sizesFrom,
} from './rnn-weights.js';
import type { FlaxGruWeightsSpec, GruSpec, ModelCell, RandomRnnOptions, SizeOptions, WeightLike } from './types.js';
import type { DType, HostVjp } from '@pelk/core';
import { specVjp } from './gradients.js';

/** GRU parameters in PyTorch layout (gate order r, z, n). */
export interface GruParameters {
  readonly inputSize: number;
  readonly hiddenSize: number;
  /** `W_ih` `[3H, I]`, row-major. */
  readonly weightIh: Float64Array;
  /** `W_hh` `[3H, H]`. */
  readonly weightHh: Float64Array;
  /** `b_ih` `[3H]`. */
  readonly biasIh: Float64Array;
  /** `b_hh` `[3H]`. */
  readonly biasHh: Float64Array;
  readonly resetAfter: boolean;
  /** Candidate activation (`n`). */
  readonly activation: ActivationName;
  /** Gate activation (`r`, `z`). */
  readonly recurrentActivation: ActivationName;
}

/**
 * A GRU cell (state `h`, `D = H`). Create one with {@link gru}`.torch`, `.flax`, `.keras` or
 * `.random`; it holds its weights on the host and uploads them in `bind`.
 *
 * @example
 * ```ts
 * const cell = gru.random({ inputSize: 2, hiddenSize: 8, seed: 1 });
 * const bound = cell.bind(backend, { dtype: 'float64', inputs, batch: 1, steps: 100 });
 * const next = bound.step(h0, 0);
 * bound.dispose();
 * ```
 */
export class GruCell implements ModelCell {
  readonly kind = 'gru';
  readonly stateSize: number;
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly resetAfter: boolean;
  readonly activation: ActivationName;
  readonly recurrentActivation: ActivationName;
  private readonly core: RnnCore;
  private readonly describe: () => GruSpec;

  /** Prefer the {@link gru} factories, which validate their input; `params` is trusted here. */
  constructor(params: GruParameters, describe: () => GruSpec) {
    this.core = gruCore(params);
    registerCore(this, this.core);
    this.describe = describe;
    this.inputSize = params.inputSize;
    this.hiddenSize = params.hiddenSize;
    this.stateSize = params.hiddenSize;
    this.resetAfter = params.resetAfter;
    this.activation = params.activation;
    this.recurrentActivation = params.recurrentActivation;
  }

  /** The cell as a backend-neutral program, for backends with fused kernels (see `ComputeBackend.bindProgram`). */
  program(): RnnProgram {
    return rnnProgram(this, this.core, () => this.describe().convention);
  }

  /** The spec `cell` object in the convention the cell was created from. */
  toSpec(): GruSpec {
    return this.describe();
  }

  /** Analytic vector–Jacobian products for `grad`, with gradients named as in {@link toSpec}'s weights. */
  hostVjp(dtype: DType): HostVjp {
    return specVjp(this, dtype);
  }

  /** Uploads the weights and precomputes `W_ih·u_t + b` for every step. */
  bind(backend: ComputeBackend, context: BindContext): BoundCell {
    return bindRnn(this.core, backend, context);
  }
}

/**
 * The r/z recurrent biases (and `b_hn` when `resetAfter` is false) are constant per step, so they
 * join the input projection: `[b_ir + b_hr, b_iz + b_hz, b_in (+ b_hn)]`.
 */
function projectionBias(p: GruParameters): Float64Array {
  const H = p.hiddenSize;
  return concatArrays([
    p.biasIh.subarray(0, 2 * H).map((v, i) => v + p.biasHh[i]),
    p.biasIh.subarray(2 * H).map((v, i) => v + (p.resetAfter ? 0 : p.biasHh[2 * H + i])),
  ]);
}

/** The GRU transition as a {@link RnnCore}: what `bind` runs, and the inner cell of an `ar` cell. */
function gruCore(p: GruParameters): RnnCore {
  const { inputSize: I, hiddenSize: H, resetAfter } = p;
  const projBias = projectionBias(p);
  const act = activation(p.activation, 'activation');
  const ra = activation(p.recurrentActivation, 'recurrentActivation');
  return {
    kind: 'gru',
    inputSize: I,
    hiddenSize: H,
    stateSize: H,
    program: {
      kind: 'gru',
      inputSize: I,
      hiddenSize: H,
      stateSize: H,
      activation: p.activation,
      recurrentActivation: p.recurrentActivation,
      resetAfter,
      weightIh: p.weightIh,
      weightHh: p.weightHh,
      biasIh: p.biasIh,
      biasHh: p.biasHh,
    },
    upload(backend, dtype, own, withInput) {
      const up = (data: Float64Array, shape: number[]): Tensor => backend.fromArray(data, shape, dtype);
      const keep = withInput ? own : <T extends Tensor>(t: T): T => t;
      const wHr = rows(p.weightHh, H, 0, H);
      const wHz = rows(p.weightHh, H, H, H);
      const wHn = rows(p.weightHh, H, 2 * H, H);
      const wIhT = keep(up(transpose(p.weightIh, 3 * H, I), [I, 3 * H]));
      const bIh = keep(up(projBias, [3 * H]));
      let recT: Tensor; // resetAfter: W_hhᵀ [H, 3H]; else [W_hr; W_hz]ᵀ [H, 2H]
      let wnT: Tensor | undefined; // resetAfter = false: W_hnᵀ [H, H]
      let bHn: Tensor | undefined; // resetAfter: b_hn [H]
      let eT: Tensor | undefined;
      if (resetAfter) {
        recT = own(up(transpose(p.weightHh, 3 * H, H), [H, 3 * H]));
        bHn = own(up(p.biasHh.slice(2 * H), [H]));
      } else {
        recT = own(up(transpose(p.weightHh.subarray(0, 2 * H * H), 2 * H, H), [H, 2 * H]));
        wnT = own(up(transpose(wHn, H, H), [H, H]));
        // diag(W_hn diag(q) W_hr)_i = Σ_k W_hn[i,k] W_hr[k,i] q_k = (q Eᵀ)_i with E = W_hn ∘ W_hrᵀ.
        const eTh = new Float64Array(H * H);
        for (let i = 0; i < H; i++) for (let k = 0; k < H; k++) eTh[k * H + i] = wHn[i * H + k] * wHr[k * H + i];
        eT = own(up(eTh, [H, H]));
      }
      const mR = own(up(wHr, [H, H]));
      const mZ = own(up(wHz, [H, H]));
      const mN = own(up(wHn, [H, H]));
      const dR = own(up(diagonal(wHr, H), [H]));
      const dZ = own(up(diagonal(wHz, H), [H]));
      const dN = own(up(diagonal(wHn, H), [H]));
      // Input-weight blocks W_ir, W_iz, W_in [H, I] for ∂h'/∂x.
      const wI = withInput ? [0, 1, 2].map((k) => own(up(rows(p.weightIh, I, k * H, H), [H, I]))) : null;

      const b = backend;
      return {
        project: (x) => b.binary('add', b.matmul(x, wIhT), bIh),
        forward(h, xp, want, wantInput = false) {
          // Temporaries are freed as soon as they are dead (nested tidies and explicit disposes), so
          // the peak of a linearisation over [B, T] is a handful of [B, T, H] tensors plus the Jacobian.
          const free = (...ts: (Tensor | null | undefined)[]): void => {
            for (const t of ts) if (t && t !== h && t !== xp) b.dispose(t);
          };
          const rec = b.matmul(h, recT);
          const aRZ = b.tidy(() => b.binary('add', b.slice(xp, -1, 0, 2 * H), b.slice(rec, -1, 0, 2 * H)));
          // resetAfter: hN = W_hn h + b_hn, multiplied by r; else r multiplies h before W_hn.
          const hN = resetAfter ? b.tidy(() => b.binary('add', b.slice(rec, -1, 2 * H, H), bHn!)) : null;
          free(rec);
          const rz = ra.forward(b, aRZ);
          const dRZ = want === 'value' ? null : b.tidy(() => ra.derivative(b, aRZ, rz));
          const r = b.slice(rz, -1, 0, H);
          const z = b.slice(rz, -1, H, H);
          free(aRZ, rz);
          const aN = b.tidy(() => b.binary('add', b.slice(xp, -1, 2 * H, H), hN ? b.binary('mul', r, hN) : b.matmul(b.binary('mul', r, h), wnT!)));
          const n = act.forward(b, aN);
          const dAct = want === 'value' ? null : b.tidy(() => act.derivative(b, aN, n));
          if (aN !== n) free(aN);
          const hMinusN = b.binary('sub', h, n);
          const value = b.tidy(() => b.binary('add', n, b.binary('mul', z, hMinusN)));
          free(n);
          if (want === 'value') return { value };

          const dr = b.slice(dRZ!, -1, 0, H);
          const dz = b.slice(dRZ!, -1, H, H);
          free(dRZ);
          const gN = b.tidy(() => b.binary('mul', b.affine(z, -1, 1), dAct!)); // ∂h'/∂aN = (1 − z) act'
          free(dAct);
          const cZ = b.binary('mul', hMinusN, dz); // ∂h'/∂aZ = (h − n) ra'
          free(hMinusN, dz);
          const withX = wantInput && wI !== null;
          const lead = h.shape.slice(0, -1);
          if (hN) {
            // ∂h'/∂aR = c_r (diagonal); J = diag(c_n) W_hn + diag(c_r) W_hr + diag(c_z) W_hz + diag(z),
            // ∂h'/∂x = diag(c_r) W_ir + diag(c_z) W_iz + diag(g_n) W_in.
            const cN = b.binary('mul', gN, r);
            const cR = b.tidy(() => b.binary('mul', b.binary('mul', gN, hN), dr));
            free(r, hN, dr);
            const jacobian =
              want === 'dense'
                ? rowScaledSum(b, lead, H, H, [{ terms: [[cN, mN], [cR, mR], [cZ, mZ]], diag: z }], z.dtype)
                : weightedSum(b, [[cN, dN], [cR, dR], [cZ, dZ]], z);
            free(cN, z);
            if (!withX) return { value, jacobian };
            const inputJacobian = b.tidy(() => sum(b, scaleRows(b, cR, wI[0]), scaleRows(b, cZ, wI[1]), scaleRows(b, gN, wI[2])));
            return { value, jacobian, inputJacobian };
          }
          // ∂aN/∂aR = W_hn diag(q) with q = h ⊙ ra'(r-gate), so ∂aN/∂h = W_hn diag(r) + W_hn diag(q) W_hr;
          // J = diag(z) + diag(c_z) W_hz + diag(g_n) ∂aN/∂h, and
          // ∂h'/∂x = diag(c_z) W_iz + diag(g_n) (W_in + W_hn diag(q) W_ir).
          const q = b.binary('mul', h, dr);
          free(dr);
          let jacobian: Tensor;
          if (want === 'dense') {
            const inner = b.tidy(() => {
              const viaQ = b.tidy(() => b.matmul(scaleCols(b, mN, q), mR));
              const viaR = scaleCols(b, mN, r);
              const t = b.binary('add', viaR, viaQ);
              free(viaQ, viaR);
              return t;
            });
            const scaled = b.tidy(() => scaleRows(b, gN, inner));
            free(inner);
            const rest = rowScaledSum(b, lead, H, H, [{ terms: [[cZ, mZ]], diag: z }], z.dtype);
            jacobian = b.binary('add', scaled, rest);
            free(scaled, rest);
          } else {
            const innerDiag = b.tidy(() => b.binary('add', b.binary('mul', dN, r), b.matmul(q, eT!)));
            jacobian = weightedSum(b, [[gN, innerDiag], [cZ, dZ]], z);
            free(innerDiag);
          }
          if (!withX) return { value, jacobian };
          const inputJacobian = b.tidy(() => {
            const viaR = b.binary('add', wI[2], b.matmul(scaleCols(b, mN, q), wI[0]));
            return b.binary('add', scaleRows(b, cZ, wI[1]), scaleRows(b, gN, viaR));
          });
          return { value, jacobian, inputJacobian };
        },
      };
    },
  };
}

// ---- factories ------------------------------------------------------------------------------

/** PyTorch `nn.GRU` (one layer) `state_dict` entries. Biases may be omitted (`bias=False`). */
export interface TorchGruWeights {
  readonly weight_ih_l0: WeightLike;
  readonly weight_hh_l0: WeightLike;
  readonly bias_ih_l0?: WeightLike;
  readonly bias_hh_l0?: WeightLike;
}

/** A flax `nn.Dense` parameter dict (`kernel` `[in, out]`). */
export interface FlaxDense {
  readonly kernel: WeightLike;
  readonly bias?: WeightLike;
}

/** flax.linen `GRUCell` parameters; also accepted wrapped as `{ params: { … } }`. */
export interface FlaxGruParams {
  readonly ir: FlaxDense;
  readonly iz: FlaxDense;
  readonly in: FlaxDense;
  readonly hr: FlaxDense;
  readonly hz: FlaxDense;
  readonly hn: FlaxDense;
}

/** Options of `gru.flax`: flax's `activation_fn` and `gate_fn`, and sizes to check. */
export interface FlaxGruOptions extends SizeOptions {
  /** flax `activation_fn`. Default `'tanh'`. */
  readonly activation?: ActivationName;
  /** flax `gate_fn`. Default `'sigmoid'`. */
  readonly recurrentActivation?: ActivationName;
}

/** A Keras / tfjs-layers GRU: its weights (`layer.getWeights()` order) and config. */
export interface KerasGruConfig extends SizeOptions {
  /** `[I, 3H]`, gate blocks in Keras order z, r, h. */
  readonly kernel: WeightLike;
  /** `[H, 3H]`, same gate order. */
  readonly recurrentKernel: WeightLike;
  /** `[3H]` (input bias only) or `[2, 3H]` (input and recurrent bias, `resetAfter: true`). */
  readonly bias?: WeightLike;
  /** Default: `true` when `bias` is `[2, 3H]`, else `false` (tfjs-layers supports only `false`). */
  readonly resetAfter?: boolean;
  /** Default `'tanh'`. */
  readonly activation?: ActivationName;
  /** Default `'hardSigmoid'` (tfjs-layers and Keras 2); Keras 3 uses `'sigmoid'`. */
  readonly recurrentActivation?: ActivationName;
}

/** @internal Builds a torch-convention GRU; `prefix`/`hintField` name fields in errors. */
export function gruFromTorch(weights: unknown, hints: SizeHints, prefix: string, hintField: string): GruCell {
  const { form, spec } = readTorchWeights(weights, 3, hints, prefix, hintField);
  const { inputSize, hiddenSize } = form;
  return new GruCell({ ...form, resetAfter: true, activation: 'tanh', recurrentActivation: 'sigmoid' }, () => ({
    type: 'gru',
    convention: 'torch',
    inputSize,
    hiddenSize,
    weights: spec(),
  }));
}

/** @internal Builds a flax-convention GRU. */
export function gruFromFlax(params: unknown, options: Record<string, unknown>, prefix: string, hintField: string): GruCell {
  let p = readObject(params, prefix);
  if (p.params !== undefined && p.ir === undefined) {
    checkKnownKeys(p, ['params'], prefix);
    prefix = fieldName(prefix, 'params');
    p = readObject(p.params, prefix);
  }
  checkKnownKeys(p, FLAX_GRU_NAMES, prefix);
  const act = activation(options.activation ?? 'tanh', fieldName(hintField, 'activation')).name;
  const ra = activation(options.recurrentActivation ?? 'sigmoid', fieldName(hintField, 'recurrentActivation')).name;
  const dense = (name: string): Record<string, unknown> => {
    const d = readObject(p[name], fieldName(prefix, name));
    checkKnownKeys(d, FLAX_DENSE_KEYS, fieldName(prefix, name));
    return d;
  };
  const irField = fieldName(prefix, 'ir.kernel');
  const { inputSize: I, hiddenSize: H } = sizesFrom(
    parseArray(dense('ir').kernel, irField),
    irField,
    options,
    hintField,
    1,
    ([r, c]) => (r > 0 && c > 0 ? { inputSize: r, hiddenSize: c } : {}),
    'shape [inputSize, hiddenSize] with both > 0',
  );
  // Kernels are [in, out]; flax's hr and hz Dense layers have no bias.
  const kernels = new Map<string, Float64Array>();
  const biases = new Map<string, Float64Array>();
  for (const name of FLAX_GRU_NAMES) {
    const d = dense(name);
    kernels.set(name, readWeight(d.kernel, fieldName(prefix, `${name}.kernel`), [fanIn(name, I, H), H]));
    const biasField = fieldName(prefix, `${name}.bias`);
    if (name !== 'hr' && name !== 'hz') biases.set(name, readWeight(d.bias, biasField, [H]));
    else if (d.bias !== undefined) throw new InvalidArgumentError(biasField, 'no bias (flax GRUCell has none)', describeValue(d.bias));
  }
  const tr = (name: string): Float64Array => transpose(kernels.get(name)!, fanIn(name, I, H), H);
  const torchForm: GruParameters = {
    inputSize: I,
    hiddenSize: H,
    weightIh: concatArrays([tr('ir'), tr('iz'), tr('in')]),
    weightHh: concatArrays([tr('hr'), tr('hz'), tr('hn')]),
    biasIh: concatArrays([biases.get('ir')!, biases.get('iz')!, biases.get('in')!]),
    biasHh: concatArrays([new Float64Array(2 * H), biases.get('hn')!]),
    resetAfter: true,
    activation: act,
    recurrentActivation: ra,
  };
  const weights = (): FlaxGruWeightsSpec => {
    const out: Record<string, { kernel: number[][]; bias?: number[] }> = {};
    for (const name of FLAX_GRU_NAMES) {
      const bias = biases.get(name);
      out[name] = { kernel: toNested(kernels.get(name)!, [fanIn(name, I, H), H]) as number[][], ...(bias ? { bias: Array.from(bias) } : {}) };
    }
    return out as unknown as FlaxGruWeightsSpec;
  };
  return new GruCell(torchForm, () => ({
    type: 'gru',
    convention: 'flax',
    inputSize: I,
    hiddenSize: H,
    weights: weights(),
    ...(act !== 'tanh' ? { activation: act } : {}),
    ...(ra !== 'sigmoid' ? { recurrentActivation: ra } : {}),
  }));
}

const FLAX_GRU_NAMES = ['ir', 'iz', 'in', 'hr', 'hz', 'hn'] as const;
const FLAX_DENSE_KEYS = ['kernel', 'bias'] as const;

/** @internal Option keys of `gru.flax` (a spec's flax cell adds `type`, `convention`, `weights`). */
export const GRU_FLAX_OPTION_KEYS = [...SIZE_KEYS, 'activation', 'recurrentActivation'] as const;

/** @internal Config keys of a Keras GRU beside its weights (`gru.keras` takes both in one object). */
export const GRU_KERAS_CONFIG_KEYS = [...SIZE_KEYS, 'resetAfter', 'activation', 'recurrentActivation'] as const;

/** Input width of a flax GRU Dense layer: `I` for the input-side ones, `H` for the hidden-side. */
function fanIn(name: string, I: number, H: number): number {
  return name[0] === 'i' ? I : H;
}

/** @internal `weights` holds kernel/recurrentKernel/bias, `config` the rest (one object for the factory). */
export function gruFromKeras(
  weights: Record<string, unknown>,
  config: Record<string, unknown>,
  prefix: string,
  hintField: string,
): GruCell {
  const { form, spec } = readKerasWeights(weights, 3, config, prefix, hintField, true);
  const resetAfterField = fieldName(hintField, 'resetAfter');
  let resetAfter = form.biasRows === 2;
  if (config.resetAfter !== undefined) {
    if (typeof config.resetAfter !== 'boolean') {
      throw new InvalidArgumentError(resetAfterField, 'a boolean', describeValue(config.resetAfter));
    }
    resetAfter = config.resetAfter;
  }
  if (form.biasRows === 2 && !resetAfter) {
    throw new InvalidArgumentError(resetAfterField, 'true for a [2, 3H] bias (input and recurrent)', 'false');
  }
  const act = activation(config.activation ?? 'tanh', fieldName(hintField, 'activation')).name;
  const ra = activation(config.recurrentActivation ?? 'hardSigmoid', fieldName(hintField, 'recurrentActivation')).name;
  // Keras gate blocks are (z, r, h); torch order (r, z, n) takes Keras blocks 1, 0, 2.
  const torch = kerasToTorch(form, 3, [1, 0, 2]);
  const { inputSize, hiddenSize } = form;
  return new GruCell({ ...torch, resetAfter, activation: act, recurrentActivation: ra }, () => ({
    type: 'gru',
    convention: 'keras',
    inputSize,
    hiddenSize,
    weights: spec(),
    resetAfter,
    activation: act,
    recurrentActivation: ra,
  }));
}

/**
 * GRU factories, one per weight convention. Every factory checks shapes and finiteness before
 * anything touches a backend and throws `ShapeError` / `NonFiniteError` naming the field.
 *
 * @example
 * ```ts
 * import { gru } from '@pelk/models';
 * const cell = gru.torch(stateDict); // { weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0 }
 * ```
 */
export const gru = {
  /**
   * From PyTorch `nn.GRU` (one layer) `state_dict` names: `weight_ih_l0 [3H, I]`,
   * `weight_hh_l0 [3H, H]`, `bias_ih_l0 [3H]`, `bias_hh_l0 [3H]`, gate order (r, z, n).
   * Nested arrays, typed arrays or `{ data, shape }`.
   *
   * @example
   * ```ts
   * const sd = Object.fromEntries(Object.entries(torchStateDict).map(([k, v]) => [k, v.tolist()]));
   * const cell = gru.torch(sd);
   * ```
   */
  torch(weights: TorchGruWeights, options: SizeOptions = {}): GruCell {
    const o = readObject(options, 'options');
    checkKnownKeys(o, SIZE_KEYS, 'options');
    return gruFromTorch(weights, o, 'weights', 'options');
  },

  /**
   * From flax.linen `GRUCell` parameters. Mapping to the torch form (flax kernels are `[in, out]`):
   * `W_ir = ir.kernelᵀ, b_ir = ir.bias`; `W_iz = iz.kernelᵀ, b_iz = iz.bias`;
   * `W_in = in.kernelᵀ, b_in = in.bias`; `W_hr = hr.kernelᵀ, b_hr = 0`; `W_hz = hz.kernelᵀ, b_hz = 0`;
   * `W_hn = hn.kernelᵀ, b_hn = hn.bias` — i.e. the torch equations without `b_hr`, `b_hz`.
   *
   * @example
   * ```ts
   * // params = jax.tree.map(lambda a: a.tolist(), variables['params']), exported as JSON
   * const cell = gru.flax(params);
   * ```
   */
  flax(params: FlaxGruParams | { readonly params: FlaxGruParams }, options: FlaxGruOptions = {}): GruCell {
    const o = readObject(options, 'options');
    checkKnownKeys(o, GRU_FLAX_OPTION_KEYS, 'options');
    return gruFromFlax(params, o, 'params', 'options');
  },

  /**
   * From a Keras / tfjs-layers `GRU` layer: `kernel [I, 3H]`, `recurrentKernel [H, 3H]`,
   * `bias [3H]` or `[2, 3H]`, gate blocks (z, r, h). tfjs-layers defaults:
   * `recurrentActivation: 'hardSigmoid'` (`clip(0.2x + 0.5, 0, 1)`), `resetAfter: false`.
   *
   * @example
   * ```ts
   * const [kernel, recurrentKernel, bias] = layer.getWeights().map((w) => w.arraySync());
   * const cell = gru.keras({ kernel, recurrentKernel, bias, resetAfter: false });
   * ```
   */
  keras(config: KerasGruConfig): GruCell {
    const c = readObject(config, 'config');
    checkKnownKeys(c, [...KERAS_WEIGHT_KEYS, ...GRU_KERAS_CONFIG_KEYS], 'config');
    return gruFromKeras(c, c, '', '');
  },

  /**
   * A GRU with seeded uniform(−1/√H, 1/√H) weights (PyTorch's initialisation), torch convention.
   *
   * @example
   * ```ts
   * const cell = gru.random({ inputSize: 2, hiddenSize: 16, seed: 1 });
   * ```
   */
  random(options: RandomRnnOptions): GruCell {
    checkKnownKeys(readObject(options, 'options'), RANDOM_KEYS, 'options');
    const { inputSize: I, hiddenSize: H, next, bound } = randomOptions(options, 'options');
    const w = {
      weight_ih_l0: { data: uniform(next, 3 * H * I, bound), shape: [3 * H, I] },
      weight_hh_l0: { data: uniform(next, 3 * H * H, bound), shape: [3 * H, H] },
      bias_ih_l0: uniform(next, 3 * H, bound),
      bias_hh_l0: uniform(next, 3 * H, bound),
    };
    return gruFromTorch(w, {}, 'weights', 'options');
  },
};
