/**
 * Types shared by the cells and the model-spec format (../shared/fixtures/FORMAT.md in the
 * repository): the serialisable cell descriptions and the weight forms the factories accept.
 */
import type { Cell } from '@pelk/core';
import type { ActivationName } from './activations.js';

/**
 * A weight as the factories accept it: nested arrays (rows may be typed arrays), a flat row-major
 * typed array or array, or `{ data, shape }`.
 */
export type WeightLike =
  | ArrayLike<number>
  | ReadonlyArray<ArrayLike<number>>
  | ReadonlyArray<ReadonlyArray<ArrayLike<number>>>
  | { readonly data: ArrayLike<number>; readonly shape: readonly number[] };

/** Optional sizes the weights are checked against (inferred from the weights otherwise). */
export interface SizeOptions {
  readonly inputSize?: number;
  readonly hiddenSize?: number;
}

/** Options of the `random` factories of the recurrent cells. */
export interface RandomRnnOptions {
  readonly inputSize: number;
  readonly hiddenSize: number;
  /** PRNG seed (integer). Default 0. */
  readonly seed?: number;
  /** Weights are uniform in `[-scale, scale)`. Default `1/√hiddenSize` (PyTorch's initialisation). */
  readonly scale?: number;
}

/** A cell of this package: a core {@link Cell} that can also describe itself as a spec. */
export interface ModelCell extends Cell {
  /** The `cell` object of the model-spec JSON; `readModelSpec` turns it back into an equal cell. */
  toSpec(): CellSpec;
}

/** PyTorch `state_dict` names of a one-layer `nn.GRU` / `nn.LSTM` / `nn.RNN`. */
export interface TorchWeightsSpec {
  weight_ih_l0: number[][];
  weight_hh_l0: number[][];
  bias_ih_l0?: number[];
  bias_hh_l0?: number[];
}

/** Keras / tfjs-layers weight names (camelCase, as in tfjs-layers). */
export interface KerasWeightsSpec {
  kernel: number[][];
  recurrentKernel: number[][];
  /** `[G·H]`, or `[2, 3H]` for a GRU with `resetAfter` (input bias, recurrent bias). */
  bias?: number[] | number[][];
}

/** One flax `nn.Dense` parameter dict: `kernel` is `[in, out]`. */
export interface FlaxDenseSpec {
  kernel: number[][];
  bias?: number[];
}

/** flax.linen `GRUCell` parameters (`ir`, `iz`, `in` with bias; `hr`, `hz` without; `hn` with). */
export interface FlaxGruWeightsSpec {
  ir: FlaxDenseSpec;
  iz: FlaxDenseSpec;
  in: FlaxDenseSpec;
  hr: FlaxDenseSpec;
  hz: FlaxDenseSpec;
  hn: FlaxDenseSpec;
}

interface RnnSpecBase {
  inputSize: number;
  hiddenSize: number;
}

/** GRU cell specs. */
export type GruSpec =
  | ({ type: 'gru'; convention: 'torch'; weights: TorchWeightsSpec } & RnnSpecBase)
  | ({
      type: 'gru';
      convention: 'flax';
      weights: FlaxGruWeightsSpec;
      activation?: ActivationName;
      recurrentActivation?: ActivationName;
    } & RnnSpecBase)
  | ({
      type: 'gru';
      convention: 'keras';
      weights: KerasWeightsSpec;
      resetAfter: boolean;
      activation: ActivationName;
      recurrentActivation: ActivationName;
    } & RnnSpecBase);

/** LSTM cell specs. */
export type LstmSpec =
  | ({ type: 'lstm'; convention: 'torch'; weights: TorchWeightsSpec } & RnnSpecBase)
  | ({
      type: 'lstm';
      convention: 'keras';
      weights: KerasWeightsSpec;
      activation: ActivationName;
      recurrentActivation: ActivationName;
    } & RnnSpecBase);

/** Elman (vanilla RNN) cell specs. */
export type ElmanSpec =
  | ({ type: 'elman'; convention: 'torch'; weights: TorchWeightsSpec; nonlinearity: 'tanh' | 'relu' } & RnnSpecBase)
  | ({ type: 'elman'; convention: 'keras'; weights: KerasWeightsSpec; activation: ActivationName } & RnnSpecBase);

/** Lorenz-96 cell spec. */
export interface Lorenz96Spec {
  type: 'lorenz96';
  dimension: number;
  forcing: number;
  dt: number;
  integrator: 'rk4' | 'euler';
}

/** The readout of an `ar` cell: `[μ, ℓ] = W o + b`, `o = h' (+ x when skip)`. */
export interface ArReadoutSpec {
  /** `[2I, H]`: rows `0..I-1` give μ, rows `I..2I-1` give ℓ (`[2, H]` for a scalar value). */
  weight: number[][];
  /** `[2I]`: `[b_μ…, b_ℓ…]`. */
  bias: number[];
  /** Whether the readout sees `h' + x` (true) or `h'` (false). */
  skip: boolean;
}

/** Autoregressive cell spec (FORMAT.md): an inner recurrent cell fed its own previous output. */
export interface ArSpec {
  type: 'ar';
  inner: GruSpec | LstmSpec | ElmanSpec;
  readout: ArReadoutSpec;
  /** How a driver enters: `x' = μ + softplus(ℓ)·u_t`. */
  noise: 'softplus';
}

/** The `cell` object of a model spec. */
export type CellSpec = GruSpec | LstmSpec | ElmanSpec | Lorenz96Spec | ArSpec;
