/**
 * Elman (vanilla) RNN: `h' = act(W_ih x + b_ih + W_hh h + b_hh)`, Jacobian `diag(act'(·)) W_hh`.
 * PyTorch `nn.RNN` (`nonlinearity` 'tanh' | 'relu') and Keras / tfjs-layers `SimpleRNN`.
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
import { scaleRows } from './bound.js';
import { diagonal, fieldName, randomOptions, readObject, transpose, uniform } from './host.js';
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
import type { ElmanSpec, ModelCell, RandomRnnOptions, SizeOptions, WeightLike } from './types.js';
import type { DType, HostVjp } from '@pelk/core';
import { specVjp } from './gradients.js';

/** Elman parameters in PyTorch layout (`W_ih [H, I]`, `W_hh [H, H]`). */
export interface ElmanParameters extends TorchForm {
  readonly activation: ActivationName;
}

/**
 * An Elman RNN cell (state `h`). Create one with {@link elman}.
 *
 * @example
 * ```ts
 * const cell = elman.random({ inputSize: 3, hiddenSize: 8, seed: 1, nonlinearity: 'relu' });
 * ```
 */
export class ElmanCell implements ModelCell {
  readonly kind = 'elman';
  readonly stateSize: number;
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly activation: ActivationName;
  private readonly core: RnnCore;
  private readonly describe: () => ElmanSpec;

  /** Prefer the {@link elman} factories, which validate their input; `params` is trusted here. */
  constructor(params: ElmanParameters, describe: () => ElmanSpec) {
    this.core = elmanCore(params);
    registerCore(this, this.core);
    this.describe = describe;
    this.inputSize = params.inputSize;
    this.hiddenSize = params.hiddenSize;
    this.stateSize = params.hiddenSize;
    this.activation = params.activation;
  }

  /** The cell as a backend-neutral program, for backends with fused kernels (see `ComputeBackend.bindProgram`). */
  program(): RnnProgram {
    return rnnProgram(this, this.core, () => this.describe().convention);
  }

  /** The spec `cell` object in the convention the cell was created from. */
  toSpec(): ElmanSpec {
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

/** The Elman transition as a {@link RnnCore}: what `bind` runs, and the inner cell of an `ar` cell. */
function elmanCore(p: ElmanParameters): RnnCore {
  const { inputSize: I, hiddenSize: H } = p;
  const act = activation(p.activation, 'activation');
  const bias = p.biasIh.map((v, i) => v + p.biasHh[i]);
  return {
    kind: 'elman',
    inputSize: I,
    hiddenSize: H,
    stateSize: H,
    program: {
      kind: 'elman',
      inputSize: I,
      hiddenSize: H,
      stateSize: H,
      activation: p.activation,
      weightIh: p.weightIh,
      weightHh: p.weightHh,
      biasIh: p.biasIh,
      biasHh: p.biasHh,
    },
    upload(backend, dtype, own, withInput) {
      const up = (data: Float64Array, shape: number[]): Tensor => backend.fromArray(data, shape, dtype);
      const keep = withInput ? own : <T extends Tensor>(t: T): T => t;
      const wIhT = keep(up(transpose(p.weightIh, H, I), [I, H]));
      const bIh = keep(up(bias, [H]));
      const whhT = own(up(transpose(p.weightHh, H, H), [H, H]));
      const whh = own(up(p.weightHh, [H, H]));
      const dWhh = own(up(diagonal(p.weightHh, H), [H]));
      const wIh = withInput ? own(up(p.weightIh, [H, I])) : null; // for ∂h'/∂x = diag(act') W_ih
      const b = backend;
      return {
        project: (x) => b.binary('add', b.matmul(x, wIhT), bIh),
        forward(h, xp, want, wantInput = false) {
          const a = b.binary('add', xp, b.matmul(h, whhT));
          const value = act.forward(b, a);
          if (want === 'value') return { value };
          const da = act.derivative(b, a, value);
          const jacobian = want === 'dense' ? scaleRows(b, da, whh) : b.binary('mul', da, dWhh);
          if (!wantInput || wIh === null) return { value, jacobian };
          return { value, jacobian, inputJacobian: scaleRows(b, da, wIh) };
        },
      };
    },
  };
}

/** PyTorch `nn.RNN` (one layer) `state_dict` entries. */
export interface TorchElmanWeights {
  readonly weight_ih_l0: WeightLike;
  readonly weight_hh_l0: WeightLike;
  readonly bias_ih_l0?: WeightLike;
  readonly bias_hh_l0?: WeightLike;
}

/** Options of `elman.torch`. */
export interface TorchElmanOptions extends SizeOptions {
  /** PyTorch's `nonlinearity`. Default `'tanh'`. */
  readonly nonlinearity?: 'tanh' | 'relu';
}

/** A Keras / tfjs-layers `SimpleRNN`: `kernel [I, H]`, `recurrentKernel [H, H]`, `bias [H]`. */
export interface KerasElmanConfig extends SizeOptions {
  readonly kernel: WeightLike;
  readonly recurrentKernel: WeightLike;
  readonly bias?: WeightLike;
  /** Default `'tanh'`. */
  readonly activation?: ActivationName;
}

/** @internal Option keys of `elman.torch` (a spec's torch elman cell adds `type`, `convention`, `weights`). */
export const ELMAN_TORCH_OPTION_KEYS = [...SIZE_KEYS, 'nonlinearity'] as const;

/** @internal Config keys of a Keras SimpleRNN beside its weights (`elman.keras` takes both in one object). */
export const ELMAN_KERAS_CONFIG_KEYS = [...SIZE_KEYS, 'activation'] as const;

/** @internal */
export function elmanFromTorch(
  weights: unknown,
  hints: SizeHints & { nonlinearity?: unknown },
  prefix: string,
  hintField: string,
): ElmanCell {
  const nl = hints.nonlinearity ?? 'tanh';
  if (nl !== 'tanh' && nl !== 'relu') {
    throw new InvalidArgumentError(fieldName(hintField, 'nonlinearity'), "'tanh' or 'relu'", describeValue(nl));
  }
  const { form, spec } = readTorchWeights(weights, 1, hints, prefix, hintField);
  const { inputSize, hiddenSize } = form;
  return new ElmanCell({ ...form, activation: nl }, () => ({
    type: 'elman',
    convention: 'torch',
    inputSize,
    hiddenSize,
    weights: spec(),
    nonlinearity: nl,
  }));
}

/** @internal */
export function elmanFromKeras(
  weights: Record<string, unknown>,
  config: Record<string, unknown>,
  prefix: string,
  hintField: string,
): ElmanCell {
  const { form, spec } = readKerasWeights(weights, 1, config, prefix, hintField, false);
  const act = activation(config.activation ?? 'tanh', fieldName(hintField, 'activation')).name;
  const { inputSize, hiddenSize } = form;
  return new ElmanCell({ ...kerasToTorch(form, 1, [0]), activation: act }, () => ({
    type: 'elman',
    convention: 'keras',
    inputSize,
    hiddenSize,
    weights: spec(),
    activation: act,
  }));
}

/**
 * Elman RNN factories. Shapes and finiteness are checked before anything touches a backend.
 *
 * @example
 * ```ts
 * import { elman } from '@pelk/models';
 * const cell = elman.torch(stateDict, { nonlinearity: 'relu' });
 * ```
 */
export const elman = {
  /**
   * From PyTorch `nn.RNN` (one layer) `state_dict` names: `weight_ih_l0 [H, I]`,
   * `weight_hh_l0 [H, H]`, `bias_ih_l0 [H]`, `bias_hh_l0 [H]`.
   *
   * @example
   * ```ts
   * const cell = elman.torch({ weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0 }, { nonlinearity: 'tanh' });
   * ```
   */
  torch(weights: TorchElmanWeights, options: TorchElmanOptions = {}): ElmanCell {
    const o = readObject(options, 'options');
    checkKnownKeys(o, ELMAN_TORCH_OPTION_KEYS, 'options');
    return elmanFromTorch(weights, o, 'weights', 'options');
  },

  /**
   * From a Keras / tfjs-layers `SimpleRNN` layer.
   *
   * @example
   * ```ts
   * const [kernel, recurrentKernel, bias] = layer.getWeights().map((w) => w.arraySync());
   * const cell = elman.keras({ kernel, recurrentKernel, bias, activation: 'tanh' });
   * ```
   */
  keras(config: KerasElmanConfig): ElmanCell {
    const c = readObject(config, 'config');
    checkKnownKeys(c, [...KERAS_WEIGHT_KEYS, ...ELMAN_KERAS_CONFIG_KEYS], 'config');
    return elmanFromKeras(c, c, '', '');
  },

  /**
   * An Elman RNN with seeded uniform(−1/√H, 1/√H) weights, torch convention.
   *
   * @example
   * ```ts
   * const cell = elman.random({ inputSize: 3, hiddenSize: 8, seed: 1 });
   * ```
   */
  random(options: RandomRnnOptions & { readonly nonlinearity?: 'tanh' | 'relu' }): ElmanCell {
    checkKnownKeys(readObject(options, 'options'), [...RANDOM_KEYS, 'nonlinearity'], 'options');
    const { inputSize: I, hiddenSize: H, next, bound } = randomOptions(options, 'options');
    return elmanFromTorch(
      {
        weight_ih_l0: { data: uniform(next, H * I, bound), shape: [H, I] },
        weight_hh_l0: { data: uniform(next, H * H, bound), shape: [H, H] },
        bias_ih_l0: uniform(next, H, bound),
        bias_hh_l0: uniform(next, H, bound),
      },
      { nonlinearity: options.nonlinearity },
      'weights',
      'options',
    );
  },
};
