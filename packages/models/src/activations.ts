/**
 * Activation functions as backend op sequences: the forward map and its derivative, so every cell
 * gets analytic Jacobians for every activation it supports.
 */
import { type ComputeBackend, InvalidArgumentError, type ProgramActivation, type Tensor, describeValue } from '@pelk/core';

/** Activation names the cells accept (core's program activations; their scalar forms are core's `SCALAR_ACTIVATIONS`). */
export type ActivationName = ProgramActivation;

/** One activation as backend ops. */
export interface Activation {
  readonly name: ActivationName;
  /** `y = act(x)`. */
  forward(backend: ComputeBackend, x: Tensor): Tensor;
  /** `act'(x)`, given the pre-activation `x` and `y = act(x)` (whichever is cheaper to use). */
  derivative(backend: ComputeBackend, x: Tensor, y: Tensor): Tensor;
}

const TABLE: Readonly<Record<ActivationName, Activation>> = {
  // σ' = σ(1 − σ), from the output: no second exp.
  sigmoid: {
    name: 'sigmoid',
    forward: (b, x) => b.unary('sigmoid', x),
    derivative: (b, _x, y) => b.binary('mul', y, b.affine(y, -1, 1)),
  },
  // clip(0.2x + 0.5, 0, 1) (TensorFlow.js / Keras 2); derivative 0.2 inside |x| < 2.5.
  hardSigmoid: {
    name: 'hardSigmoid',
    forward: (b, x) => b.unary('hardSigmoid', x),
    derivative: (b, x) => b.unary('hardSigmoidGrad', x),
  },
  // tanh' = 1 − tanh².
  tanh: {
    name: 'tanh',
    forward: (b, x) => b.unary('tanh', x),
    derivative: (b, _x, y) => b.affine(b.unary('square', y), -1, 1),
  },
  relu: {
    name: 'relu',
    forward: (b, x) => b.unary('relu', x),
    derivative: (b, x) => b.unary('step', x),
  },
  linear: {
    name: 'linear',
    forward: (_b, x) => x,
    derivative: (b, x) => b.affine(x, 0, 1),
  },
};

/** Every name {@link activation} accepts (aliases excluded). */
export const ACTIVATIONS: readonly ActivationName[] = Object.keys(TABLE) as ActivationName[];

/** Names used by Keras configs, mapped to pelk's. */
const ALIASES: Readonly<Record<string, ActivationName>> = { hard_sigmoid: 'hardSigmoid' };

/**
 * Looks up an activation by name. Keras's `'hard_sigmoid'` is accepted as `'hardSigmoid'`.
 * Unknown names throw an `InvalidArgumentError` naming `field`.
 *
 * @example
 * ```ts
 * const act = activation('tanh', 'activation');
 * const y = act.forward(backend, x);
 * const dy = act.derivative(backend, x, y); // 1 − y²
 * ```
 */
export function activation(name: unknown, field: string): Activation {
  const key = typeof name === 'string' ? (ALIASES[name] ?? name) : undefined;
  if (key === undefined || !Object.hasOwn(TABLE, key)) {
    throw new InvalidArgumentError(field, `one of ${ACTIVATIONS.map((a) => `'${a}'`).join(', ')}`, describeValue(name));
  }
  return TABLE[key as ActivationName];
}
