/**
 * Training recurrent weights on TensorFlow.js with pelk: the forward trajectory is solved by a pelk
 * method (in parallel over time, on any pelk backend — this package's `TfjsBackend`, WebGPU, …) and
 * enters the tfjs graph through `tf.customGrad`, whose gradient is pelk's exact adjoint at that
 * trajectory (`gradAt`: the reverse sweep with the cell's analytic vector–Jacobian products). The
 * weights are ordinary `tf.Variable`s, so any tfjs optimizer trains them.
 *
 * pelk's solvers are asynchronous (they yield, read back, and may run on a GPU) and a tfjs gradient
 * function is synchronous, so a training step has two phases: `await recurrent.solve(inputs)`, then
 * `optimizer.minimize(() => loss(solved.states()))` (or `tf.variableGrads`). `model.fit`, whose
 * layers' `call` is synchronous, cannot await a solve and is not supported.
 */
import {
  type Cell,
  type ComputeBackend,
  type DType,
  describeValue,
  type EvaluateOptions,
  type EvaluateResult,
  evaluate,
  gradAt,
  InvalidArgumentError,
  type Method,
  NotConvergedError,
  ShapeError,
} from '@pelk/core';
import * as tf from '@tensorflow/tfjs-core';

/** A weight's current value, as `build` receives it (row-major, in the variable's shape). */
export interface WeightValue {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

/** Options of {@link pelkRecurrent}. */
export interface PelkRecurrentOptions {
  /**
   * Builds the cell from the weights' current values, keyed as the `weights` given to
   * {@link pelkRecurrent} — which must be the names the cell reports gradients by (its spec's weight
   * names, e.g. `kernel`, `recurrentKernel`, `bias` for a Keras-convention cell from @pelk/models).
   */
  readonly build: (weights: Readonly<Record<string, WeightValue>>) => Cell;
  /** The pelk backend the forward solve runs on (an instance or a registered name). */
  readonly backend?: string | ComputeBackend;
  /** Default `'quasi-deer'`. */
  readonly method?: Method;
  /** Default `'float32'` (tfjs computes in float32). */
  readonly dtype?: DType;
  /** Other options of `evaluate` (tolerance, maxIterations, …). */
  readonly evaluate?: Omit<EvaluateOptions, 'backend' | 'method' | 'dtype' | 'initialState'>;
  /** Differentiate at a trajectory that did not converge. Default `false`: `solve` rejects with a `NotConvergedError`. */
  readonly allowNonConverged?: boolean;
}

/** A solved forward trajectory, ready to enter a tfjs computation (see {@link PelkRecurrent.solve}). */
export interface SolvedRecurrence {
  /**
   * The states `[B, T, D]` as a tfjs tensor whose gradient — with respect to the inputs, the initial
   * state and every weight variable — is pelk's exact adjoint. Call it inside
   * `optimizer.minimize` / `tf.variableGrads`; the weights must not change between `solve` and the
   * gradient (the trajectory belongs to the weights it was solved with).
   */
  states(): tf.Tensor3D;
  /** The forward solve's iterations, certificate and timing. */
  readonly forward: Pick<EvaluateResult, 'method' | 'iterations' | 'converged' | 'reason' | 'residual'> & { readonly elapsedMs: number };
}

/** A recurrent layer whose forward pass is a pelk solve (see {@link pelkRecurrent}). */
export interface PelkRecurrent {
  /** The weight variables, by name. */
  readonly weights: Readonly<Record<string, tf.Variable>>;
  /**
   * Solves the trajectory for `inputs` `[B, T, I]` (and the initial states `[B, D]`, default zeros)
   * with the weights' current values.
   */
  solve(inputs: tf.Tensor3D, initialState?: tf.Tensor2D): Promise<SolvedRecurrence>;
}

/**
 * A recurrent layer trained through pelk: forward by a parallel-in-time solve, backward by the exact
 * adjoint.
 *
 * @example
 * ```ts
 * import { gru } from '@pelk/models';
 * const weights = { kernel: tf.variable(k), recurrentKernel: tf.variable(r), bias: tf.variable(b) };
 * const layer = pelkRecurrent(weights, {
 *   build: (w) => gru.keras({ ...w, resetAfter: true, activation: 'tanh', recurrentActivation: 'sigmoid' }),
 *   backend,
 * });
 * const optimizer = tf.train.adam(0.01);
 * for (let step = 0; step < 100; step++) {
 *   const solved = await layer.solve(x);
 *   optimizer.minimize(() => tf.losses.meanSquaredError(y, solved.states()));
 * }
 * ```
 */
export function pelkRecurrent(weights: Record<string, tf.Variable>, options: PelkRecurrentOptions): PelkRecurrent {
  if (!weights || typeof weights !== 'object' || Object.keys(weights).length === 0) {
    throw new InvalidArgumentError('weights', 'an object of tf.Variable by name (at least one)', describeValue(weights));
  }
  for (const [name, v] of Object.entries(weights)) {
    if (!(v instanceof tf.Variable)) throw new InvalidArgumentError(`weights.${name}`, 'a tf.Variable', describeValue(v));
  }
  if (!options || typeof options.build !== 'function') {
    throw new InvalidArgumentError('options.build', 'a function building the cell from the weights', describeValue(options?.build));
  }
  const names = Object.keys(weights);
  const dtype = options.dtype ?? 'float32';

  return {
    weights,
    async solve(inputs, initialState) {
      if (!(inputs instanceof tf.Tensor) || inputs.rank !== 3) {
        throw new ShapeError('inputs', 'a tf.Tensor3D [B, T, I]', inputs instanceof tf.Tensor ? `rank ${inputs.rank}` : describeValue(inputs));
      }
      const [B, T] = inputs.shape;
      const values: Record<string, WeightValue> = {};
      for (const name of names) values[name] = { data: (await weights[name].data()) as Float32Array, shape: weights[name].shape };
      const cell = options.build(values);
      const D = cell.stateSize;
      if (initialState !== undefined && (!(initialState instanceof tf.Tensor) || initialState.shape.join(',') !== [B, D].join(','))) {
        throw new ShapeError('initialState', `a tf.Tensor2D [${B}, ${D}]`, initialState instanceof tf.Tensor ? `shape [${initialState.shape.join(', ')}]` : describeValue(initialState));
      }
      const u = Float64Array.from(await inputs.data());
      const s0 = initialState ? Float64Array.from(await initialState.data()) : new Float64Array(B * D);
      const result = await evaluate(cell, { data: u, shape: inputs.shape }, {
        ...options.evaluate,
        backend: options.backend,
        method: options.method ?? 'quasi-deer',
        dtype,
        initialState: { data: s0, shape: [B, D] },
      });
      let states: Float64Array;
      try {
        if (!result.converged && options.allowNonConverged !== true) {
          throw new NotConvergedError(
            'forward solve',
            'a converged trajectory (or options.allowNonConverged: true)',
            `${result.method} stopped with reason '${result.reason}' at residual ${result.residual.toExponential(3)}`,
          );
        }
        states = Float64Array.from(await result.read());
      } finally {
        result.dispose();
      }
      const forward = {
        method: result.method,
        iterations: result.iterations,
        converged: result.converged,
        reason: result.reason,
        residual: result.residual,
        elapsedMs: result.diagnostics.elapsedMs,
      };
      const trajectory = {
        states: { data: states, shape: [B, T, D] },
        inputs: cell.inputSize > 0 ? { data: u, shape: inputs.shape } : null,
        initialState: { data: s0, shape: [B, D] },
        dtype,
      };
      // Arguments of the custom op: the inputs, the initial state when given, then the weights
      // (variables), so that tfjs routes each gradient to them.
      // The forward values, converted once: every states() call (each optimiser step's tape) reuses them.
      const states32 = Float32Array.from(states);
      const forwardAndAdjoint: Parameters<typeof tf.customGrad<tf.Tensor>>[0] = () => ({
        value: tf.tensor3d(states32, [B, T, D], 'float32'),
        gradFunc: (dy: tf.Tensor) => {
          const g = gradAt(cell, trajectory, { data: dy.dataSync(), shape: [B, T, D] });
          const missing = names.filter((n) => !(n in g.parameters));
          if (missing.length > 0) {
            throw new InvalidArgumentError(
              'weights',
              `the names the cell reports gradients by (${Object.keys(g.parameters).join(', ') || 'none'})`,
              `${missing.map((n) => `'${n}'`).join(', ')}, which the cell has no gradient for`,
            );
          }
          return [
            g.inputs ? tf.tensor(Float32Array.from(g.inputs.data), inputs.shape, 'float32') : tf.zerosLike(inputs),
            ...(initialState ? [tf.tensor(Float32Array.from(g.initialState.data), [B, D], 'float32')] : []),
            ...names.map((n) => tf.tensor(Float32Array.from(g.parameters[n].data), weights[n].shape, 'float32')),
          ];
        },
      });
      const op = tf.customGrad(forwardAndAdjoint);
      const args = [inputs, ...(initialState ? [initialState] : []), ...names.map((n) => weights[n])];
      return {
        forward,
        states: () => op(...args) as tf.Tensor3D,
      };
    },
  };
}
