/**
 * Long short-term memory cell, state `[h, c]` (`D = 2H`, h first), gates in PyTorch order
 * (i, f, g, o) — Keras uses the same order (i, f, c, o):
 *
 *     i = ra(·), f = ra(·), g = act(·), o = ra(·)     (· = W_i* x + b_i* + W_h* h + b_h*)
 *     c' = f ⊙ c + i ⊙ g
 *     h' = o ⊙ act(c')
 *
 * PyTorch: `ra` = sigmoid, `act` = tanh. Keras / tfjs-layers: configurable (tfjs default
 * `recurrentActivation: 'hardSigmoid'`).
 */
import { type BindContext, type BoundCell, type ComputeBackend, type RnnProgram, type Tensor, checkKnownKeys } from '@pelk/core';
import { type ActivationName, activation } from './activations.js';
import { rowScaledSum, scaleRows, sum, weightedSum } from './bound.js';
import { diagonal, fieldName, randomOptions, readObject, rows, transpose, uniform } from './host.js';
import { type RnnCore, bindRnn, registerCore, rnnProgram } from './rnn-core.js';
import {
  KERAS_WEIGHT_KEYS,
  RANDOM_KEYS,
  SIZE_KEYS,
  type SizeHints,
  type TorchForm,
  kerasToTorch,
  readKerasWeights,
  readTorchWeights,
} from './rnn-weights.js';
import type { LstmSpec, ModelCell, RandomRnnOptions, SizeOptions, WeightLike } from './types.js';
import type { DType, HostVjp } from '@pelk/core';
import { specVjp } from './gradients.js';

/** LSTM parameters in PyTorch layout (gate order i, f, g, o; `W_ih [4H, I]`, `W_hh [4H, H]`). */
export interface LstmParameters extends TorchForm {
  /** Activation of `g` and of the cell output `act(c')`. */
  readonly activation: ActivationName;
  /** Activation of the gates `i`, `f`, `o`. */
  readonly recurrentActivation: ActivationName;
}

/**
 * An LSTM cell with state `[h, c]` (`stateSize = 2·hiddenSize`). Create one with {@link lstm}.
 *
 * @example
 * ```ts
 * const cell = lstm.random({ inputSize: 3, hiddenSize: 8, seed: 1 });
 * cell.stateSize; // 16: h (8) then c (8)
 * ```
 */
export class LstmCell implements ModelCell {
  readonly kind = 'lstm';
  readonly stateSize: number;
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly activation: ActivationName;
  readonly recurrentActivation: ActivationName;
  private readonly core: RnnCore;
  private readonly describe: () => LstmSpec;

  /** Prefer the {@link lstm} factories, which validate their input; `params` is trusted here. */
  constructor(params: LstmParameters, describe: () => LstmSpec) {
    this.core = lstmCore(params);
    registerCore(this, this.core);
    this.describe = describe;
    this.inputSize = params.inputSize;
    this.hiddenSize = params.hiddenSize;
    this.stateSize = 2 * params.hiddenSize;
    this.activation = params.activation;
    this.recurrentActivation = params.recurrentActivation;
  }

  /** The cell as a backend-neutral program, for backends with fused kernels (see `ComputeBackend.bindProgram`). */
  program(): RnnProgram {
    return rnnProgram(this, this.core, () => this.describe().convention);
  }

  /** The spec `cell` object in the convention the cell was created from. */
  toSpec(): LstmSpec {
    return this.describe();
  }

  /** Analytic vector–Jacobian products for `grad`, with gradients named as in {@link toSpec}'s weights. */
  hostVjp(dtype: DType): HostVjp {
    return specVjp(this, dtype);
  }

  /** Uploads the weights and precomputes `W_ih·u_t + b_ih + b_hh` for every step. */
  bind(backend: ComputeBackend, context: BindContext): BoundCell {
    return bindRnn(this.core, backend, context);
  }
}

/** The LSTM transition as a {@link RnnCore}: what `bind` runs, and the inner cell of an `ar` cell. */
function lstmCore(p: LstmParameters): RnnCore {
  const { inputSize: I, hiddenSize: H } = p;
  const G = 4 * H;
  const act = activation(p.activation, 'activation');
  const ra = activation(p.recurrentActivation, 'recurrentActivation');
  const bias = p.biasIh.map((v, i) => v + p.biasHh[i]);
  return {
    kind: 'lstm',
    inputSize: I,
    hiddenSize: H,
    stateSize: 2 * H,
    program: {
      kind: 'lstm',
      inputSize: I,
      hiddenSize: H,
      stateSize: 2 * H,
      activation: p.activation,
      recurrentActivation: p.recurrentActivation,
      weightIh: p.weightIh,
      weightHh: p.weightHh,
      biasIh: p.biasIh,
      biasHh: p.biasHh,
    },
    upload(backend, dtype, own, withInput) {
      const up = (data: Float64Array, shape: number[]): Tensor => backend.fromArray(data, shape, dtype);
      const keep = withInput ? own : <T extends Tensor>(t: T): T => t;
      const wIhT = keep(up(transpose(p.weightIh, G, I), [I, G]));
      const bIh = keep(up(bias, [G]));
      const whhT = own(up(transpose(p.weightHh, G, H), [H, G]));
      const m: Tensor[] = []; // W_hi, W_hf, W_hg, W_ho as [H, H]
      const d: Tensor[] = []; // their diagonals
      for (let k = 0; k < 4; k++) {
        const gate = rows(p.weightHh, H, k * H, H);
        m.push(own(up(gate, [H, H])));
        d.push(own(up(diagonal(gate, H), [H])));
      }
      // W_ii, W_if, W_ig, W_io [H, I] for ∂[h', c']/∂x.
      const wI = withInput ? [0, 1, 2, 3].map((k) => own(up(rows(p.weightIh, I, k * H, H), [H, I]))) : null;

      const b = backend;
      return {
        project: (x) => b.binary('add', b.matmul(x, wIhT), bIh),
        forward(s, xp, want, wantInput = false) {
          // Temporaries are freed as soon as they are dead (nested tidies and explicit disposes).
          const free = (...ts: (Tensor | null | undefined)[]): void => {
            for (const t of ts) if (t && t !== s && t !== xp) b.dispose(t);
          };
          const c = b.slice(s, -1, H, H);
          const pre = b.tidy(() => b.binary('add', xp, b.matmul(b.slice(s, -1, 0, H), whhT)));
          const aIF = b.slice(pre, -1, 0, 2 * H);
          const aG = b.slice(pre, -1, 2 * H, H);
          const aO = b.slice(pre, -1, 3 * H, H);
          free(pre);
          const jac = want !== 'value';
          const iF = ra.forward(b, aIF);
          const dIF = jac ? b.tidy(() => ra.derivative(b, aIF, iF)) : null;
          const i = b.slice(iF, -1, 0, H);
          const f = b.slice(iF, -1, H, H);
          free(aIF, iF);
          const g = act.forward(b, aG);
          const dG = jac ? b.tidy(() => act.derivative(b, aG, g)) : null;
          if (g !== aG) free(aG);
          const o = ra.forward(b, aO);
          const dO = jac ? b.tidy(() => ra.derivative(b, aO, o)) : null;
          if (o !== aO) free(aO);
          const c2 = b.tidy(() => b.binary('add', b.binary('mul', f, c), b.binary('mul', i, g)));
          const tc = act.forward(b, c2);
          const value = b.tidy(() => b.concat([b.binary('mul', o, tc), c2], -1));
          if (!jac) return { value };

          const ci = b.tidy(() => b.binary('mul', g, b.slice(dIF!, -1, 0, H))); // ∂c'/∂a_i
          const cf = b.tidy(() => b.binary('mul', c, b.slice(dIF!, -1, H, H))); // ∂c'/∂a_f
          free(dIF, g, c);
          const cg = b.binary('mul', i, dG!); // ∂c'/∂a_g
          const co = b.binary('mul', tc, dO!); // ∂h'/∂a_o
          free(i, dG, dO);
          const u = b.tidy(() => b.binary('mul', o, act.derivative(b, c2, tc))); // ∂h'/∂c'
          free(o, tc, c2);
          let jacobian: Tensor;
          if (want === 'dense') {
            // ∂c'/∂h = Σ diag(c_k) W_hk;  ∂h'/∂h = diag(u) ∂c'/∂h + diag(c_o) W_ho = Σ diag(u c_k) W_hk + diag(c_o) W_ho;
            // ∂h'/∂c = diag(u ⊙ f);  ∂c'/∂c = diag(f).
            const [ui, uf, ug, ufc] = [ci, cf, cg, f].map((x) => b.binary('mul', u, x));
            jacobian = rowScaledSum(
              b,
              s.shape.slice(0, -1),
              2 * H,
              2 * H,
              [
                { terms: [[ui, m[0]], [uf, m[1]], [ug, m[2]], [co, m[3]]] },
                { col: H, terms: [], diag: ufc },
                { row: H, terms: [[ci, m[0]], [cf, m[1]], [cg, m[2]]] },
                { row: H, col: H, terms: [], diag: f },
              ],
              s.dtype,
            );
            free(ui, uf, ug, ufc);
          } else {
            const dch = weightedSum(b, [[ci, d[0]], [cf, d[1]], [cg, d[2]]]);
            const dhh = b.tidy(() => b.binary('add', b.binary('mul', u, dch), b.binary('mul', co, d[3])));
            free(dch);
            jacobian = b.concat([dhh, f], -1);
            free(dhh);
          }
          if (!wantInput || wI === null) return { value, jacobian };
          // The same chain with the input weights: ∂c'/∂x = Σ diag(c_k) W_ik, ∂h'/∂x = diag(u) ∂c'/∂x + diag(c_o) W_io.
          const inputJacobian = b.tidy(() => {
            const jcx = sum(b, scaleRows(b, ci, wI[0]), scaleRows(b, cf, wI[1]), scaleRows(b, cg, wI[2]));
            const jhx = b.binary('add', scaleRows(b, u, jcx), scaleRows(b, co, wI[3]));
            return b.concat([jhx, jcx], -2);
          });
          return { value, jacobian, inputJacobian };
        },
      };
    },
  };
}

/** PyTorch `nn.LSTM` (one layer) `state_dict` entries. Biases may be omitted (`bias=False`). */
export interface TorchLstmWeights {
  readonly weight_ih_l0: WeightLike;
  readonly weight_hh_l0: WeightLike;
  readonly bias_ih_l0?: WeightLike;
  readonly bias_hh_l0?: WeightLike;
}

/** A Keras / tfjs-layers LSTM: its weights and config. */
export interface KerasLstmConfig extends SizeOptions {
  /** `[I, 4H]`, gate blocks i, f, c, o. */
  readonly kernel: WeightLike;
  /** `[H, 4H]`. */
  readonly recurrentKernel: WeightLike;
  /** `[4H]`. */
  readonly bias?: WeightLike;
  /** Default `'tanh'`. */
  readonly activation?: ActivationName;
  /** Default `'hardSigmoid'` (tfjs-layers and Keras 2); Keras 3 uses `'sigmoid'`. */
  readonly recurrentActivation?: ActivationName;
}

/** @internal */
export function lstmFromTorch(weights: unknown, hints: SizeHints, prefix: string, hintField: string): LstmCell {
  const { form, spec } = readTorchWeights(weights, 4, hints, prefix, hintField);
  const { inputSize, hiddenSize } = form;
  return new LstmCell({ ...form, activation: 'tanh', recurrentActivation: 'sigmoid' }, () => ({
    type: 'lstm',
    convention: 'torch',
    inputSize,
    hiddenSize,
    weights: spec(),
  }));
}

/** @internal Config keys of a Keras LSTM beside its weights (`lstm.keras` takes both in one object). */
export const LSTM_KERAS_CONFIG_KEYS = [...SIZE_KEYS, 'activation', 'recurrentActivation'] as const;

/** @internal */
export function lstmFromKeras(
  weights: Record<string, unknown>,
  config: Record<string, unknown>,
  prefix: string,
  hintField: string,
): LstmCell {
  const { form, spec } = readKerasWeights(weights, 4, config, prefix, hintField, false);
  const act = activation(config.activation ?? 'tanh', fieldName(hintField, 'activation')).name;
  const ra = activation(config.recurrentActivation ?? 'hardSigmoid', fieldName(hintField, 'recurrentActivation')).name;
  const { inputSize, hiddenSize } = form;
  // Same gate order in both conventions: only the kernels are transposed.
  return new LstmCell({ ...kerasToTorch(form, 4, [0, 1, 2, 3]), activation: act, recurrentActivation: ra }, () => ({
    type: 'lstm',
    convention: 'keras',
    inputSize,
    hiddenSize,
    weights: spec(),
    activation: act,
    recurrentActivation: ra,
  }));
}

/**
 * LSTM factories. Shapes and finiteness are checked before anything touches a backend.
 *
 * @example
 * ```ts
 * import { lstm } from '@pelk/models';
 * const cell = lstm.torch(stateDict); // weight_ih_l0 [4H, I], weight_hh_l0 [4H, H], biases [4H]
 * ```
 */
export const lstm = {
  /**
   * From PyTorch `nn.LSTM` (one layer) `state_dict` names, gate order (i, f, g, o).
   *
   * @example
   * ```ts
   * const cell = lstm.torch({ weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0 });
   * ```
   */
  torch(weights: TorchLstmWeights, options: SizeOptions = {}): LstmCell {
    const o = readObject(options, 'options');
    checkKnownKeys(o, SIZE_KEYS, 'options');
    return lstmFromTorch(weights, o, 'weights', 'options');
  },

  /**
   * From a Keras / tfjs-layers `LSTM` layer: `kernel [I, 4H]`, `recurrentKernel [H, 4H]`,
   * `bias [4H]`, gate blocks (i, f, c, o).
   *
   * @example
   * ```ts
   * const [kernel, recurrentKernel, bias] = layer.getWeights().map((w) => w.arraySync());
   * const cell = lstm.keras({ kernel, recurrentKernel, bias, recurrentActivation: 'sigmoid' });
   * ```
   */
  keras(config: KerasLstmConfig): LstmCell {
    const c = readObject(config, 'config');
    checkKnownKeys(c, [...KERAS_WEIGHT_KEYS, ...LSTM_KERAS_CONFIG_KEYS], 'config');
    return lstmFromKeras(c, c, '', '');
  },

  /**
   * An LSTM with seeded uniform(−1/√H, 1/√H) weights (PyTorch's initialisation), torch convention.
   *
   * @example
   * ```ts
   * const cell = lstm.random({ inputSize: 3, hiddenSize: 8, seed: 1 });
   * ```
   */
  random(options: RandomRnnOptions): LstmCell {
    checkKnownKeys(readObject(options, 'options'), RANDOM_KEYS, 'options');
    const { inputSize: I, hiddenSize: H, next, bound } = randomOptions(options, 'options');
    return lstmFromTorch(
      {
        weight_ih_l0: { data: uniform(next, 4 * H * I, bound), shape: [4 * H, I] },
        weight_hh_l0: { data: uniform(next, 4 * H * H, bound), shape: [4 * H, H] },
        bias_ih_l0: uniform(next, 4 * H, bound),
        bias_hh_l0: uniform(next, 4 * H, bound),
      },
      {},
      'weights',
      'options',
    );
  },
};
