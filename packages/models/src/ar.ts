/**
 * Autoregressive cell (`"type": "ar"` in FORMAT.md; the AR GRU of the ELK paper's stability
 * experiment). The value `x` emitted at the previous step is the inner cell's input, and a linear
 * readout of the new hidden state emits the next value, driven by one noise number per step:
 *
 *     h' = inner(h, input = x)
 *     o  = h'_out + x          (skip; x broadcast over h'_out when I = 1)      or   o = h'_out
 *     [μ, ℓ] = W o + b         (W [2I, H]: rows 0..I−1 give μ, rows I..2I−1 give ℓ)
 *     x' = μ + softplus(ℓ) ⊙ u_t
 *
 * with packed state `s = [x, h]` (`D = I + D_inner`; `h'_out` is the first `H` entries of the inner
 * state: all of it for a GRU or Elman, `h` of an LSTM's `[h, c]`). The drivers `u_t` are the cell's
 * inputs (`inputSize = I`, one driver per emitted number), so `[B, T, I]` batching is unchanged.
 *
 * Jacobian (rows `x'`, `h'`; columns `x`, `h`): with `Jx = ∂h'/∂x`, `Jh = ∂h'/∂h` of the inner cell,
 * `∂o/∂s = P [Jx, Jh] + skip·[E, 0]` (`P` takes the first `H` rows, `E` = ones for I = 1 or the
 * identity for I = H) and `M = ∂x'/∂o = W_μ + diag(σ(ℓ) ⊙ u) W_ℓ` (softplus' = sigmoid):
 *
 *     J = [ M ∂o/∂s ]
 *         [ Jx,  Jh ]
 */
import {
  type ArProgram,
  type BindContext,
  type BoundCell,
  type ComputeBackend,
  InvalidArgumentError,
  type Tensor,
  checkKnownKeys,
  describeValue,
  hostKernel,
} from '@pelk/core';
import { type ForwardFn, checkContext, makeBoundCell, scaleRows, uploadOwned } from './bound.js';
import type { ElmanCell } from './elman.js';
import type { GruCell } from './gru.js';
import { fieldName, readObject, readWeight, rows, toNested, transpose } from './host.js';
import type { LstmCell } from './lstm.js';
import { type RnnCore, type RnnKernel, coreOf } from './rnn-core.js';
import type { ArSpec, ModelCell, WeightLike } from './types.js';
import type { DType, HostVjp } from '@pelk/core';
import { specVjp } from './gradients.js';

/** A recurrent cell of this package that can be the inner cell of an `ar` cell. */
export type ArInnerCell = GruCell | LstmCell | ElmanCell;

/** How a driver enters the emitted value. Only `'softplus'`: `x' = μ + softplus(ℓ)·u`. */
export type ArNoise = 'softplus';

/** The readout of {@link ar}. */
export interface ArReadout {
  /** `[2I, H]` (`[2, H]` for a scalar value): μ rows first, then ℓ rows. `H` = the inner hiddenSize. */
  readonly weight: WeightLike;
  /** `[2I]`: `[b_μ…, b_ℓ…]`. */
  readonly bias: WeightLike;
  /** Add the previous value to the hidden output before the readout (`o = h' + x`). Default `false`. */
  readonly skip?: boolean;
}

/** Options of {@link ar}. */
export interface ArOptions {
  /** The inner cell (`gru`, `lstm` or `elman` of this package); its `inputSize` is the size `I` of the emitted value. */
  readonly inner: ArInnerCell;
  readonly readout: ArReadout;
  /** Default `'softplus'`. */
  readonly noise?: ArNoise;
}

/**
 * An autoregressive cell with packed state `[x, h]`. Create one with {@link ar}. Its inputs are the
 * drivers (`[B, T, I]`); its inner cell's input is the previous emitted value `x` from the state.
 *
 * @example
 * ```ts
 * const cell = ar({ inner: gru.random({ inputSize: 1, hiddenSize: 3, seed: 1 }), readout: { weight, bias, skip: true } });
 * cell.stateSize; // 4: x (1) then h (3)
 * cell.inputSize; // 1: one driver per step
 * ```
 */
export class ArCell implements ModelCell {
  readonly kind = 'ar';
  /** `I + D_inner`. */
  readonly stateSize: number;
  /** Drivers per step: `I`, the size of the emitted value. */
  readonly inputSize: number;
  /** Size `I` of the emitted value (the inner cell's input size). */
  readonly valueSize: number;
  /** Width `H` of the readout input (the inner cell's hidden size). */
  readonly hiddenSize: number;
  readonly skip: boolean;
  readonly noise: ArNoise;
  readonly inner: ArInnerCell;
  private readonly core: RnnCore;
  /** `[2I, H]` row-major. */
  private readonly weight: Float64Array;
  /** `[2I]`. */
  private readonly bias: Float64Array;

  /** Prefer {@link ar}, which validates its input; the arguments are trusted here. */
  constructor(inner: ArInnerCell, core: RnnCore, weight: Float64Array, bias: Float64Array, skip: boolean, noise: ArNoise) {
    this.inner = inner;
    this.core = core;
    this.weight = weight;
    this.bias = bias;
    this.skip = skip;
    this.noise = noise;
    this.valueSize = core.inputSize;
    this.inputSize = core.inputSize;
    this.hiddenSize = core.hiddenSize;
    this.stateSize = core.inputSize + core.stateSize;
  }

  /** The cell as a backend-neutral program, for backends with fused kernels (see `ComputeBackend.bindProgram`). */
  program(): ArProgram {
    const inner = this.inner.program();
    return {
      kind: 'ar',
      convention: 'pelk',
      inputSize: this.valueSize,
      stateSize: this.stateSize,
      inner,
      readout: { weight: this.weight, bias: this.bias, skip: this.skip },
      noise: 'softplus',
    };
  }

  toSpec(): ArSpec {
    const I = this.valueSize;
    return {
      type: 'ar',
      inner: this.inner.toSpec(),
      readout: { weight: toNested(this.weight, [2 * I, this.hiddenSize]) as number[][], bias: Array.from(this.bias), skip: this.skip },
      noise: this.noise,
    };
  }

  /** Analytic vector–Jacobian products for `grad`, with gradients named as in {@link toSpec}'s weights. */
  hostVjp(dtype: DType): HostVjp {
    return specVjp(this, dtype);
  }

  /** Uploads the inner cell's weights (with its input weights) and the readout; the drivers are used as given. */
  bind(backend: ComputeBackend, context: BindContext): BoundCell {
    checkContext(context, this.inputSize, this.kind);
    const core = this.core;
    const { valueSize: I, hiddenSize: H, stateSize: D, skip } = this;
    const Dh = core.stateSize;
    const W = this.weight;
    let kernel!: RnnKernel;
    let wT!: Tensor; // Wᵀ [H, 2I]
    let bias!: Tensor; // [2I]
    let wMu!: Tensor; // [I, H]
    let wL!: Tensor; // [I, H]
    let onesH!: Tensor; // [H, 1], sums rows by a product
    let skipX: Tensor | undefined; // ∂(skip term)/∂x [H, I]
    let skipS: Tensor | undefined; // ∂(skip term)/∂s [H, D]
    const owned = uploadOwned(backend, (own) => {
      const up = (data: Float64Array, shape: number[]): Tensor => backend.fromArray(data, shape, context.dtype);
      kernel = core.upload(backend, context.dtype, own, true);
      wT = own(up(transpose(W, 2 * I, H), [H, 2 * I]));
      bias = own(up(this.bias, [2 * I]));
      wMu = own(up(rows(W, H, 0, I), [I, H]));
      wL = own(up(rows(W, H, I, I), [I, H]));
      onesH = own(up(new Float64Array(H).fill(1), [H, 1]));
      if (skip) {
        // E: every o_k gets x_0 (I = 1), or o_k gets x_k (I = H).
        const e = new Float64Array(H * I);
        const eS = new Float64Array(H * D);
        for (let k = 0; k < H; k++) {
          const j = I === 1 ? 0 : k;
          e[k * I + j] = 1;
          eS[k * D + j] = 1;
        }
        skipX = own(up(e, [H, I]));
        skipS = own(up(eS, [H, D]));
      }
    });

    const b = backend;
    const forward: ForwardFn = (s, u, want) => {
      const x = b.slice(s, -1, 0, I);
      const h = b.slice(s, -1, I, Dh);
      const inner = kernel.forward(h, kernel.project(x), want, want !== 'value');
      const h2 = inner.value;
      const hOut = Dh === H ? h2 : b.slice(h2, -1, 0, H);
      const o = skip ? b.binary('add', hOut, x) : hOut; // x [..., 1] broadcasts over H
      const y = b.binary('add', b.matmul(o, wT), bias);
      const mu = b.slice(y, -1, 0, I);
      const l = b.slice(y, -1, I, I);
      const x2 = b.binary('add', mu, b.binary('mul', b.unary('softplus', l), u!));
      const value = b.concat([x2, h2], -1);
      if (want === 'value') return { value };

      // M = ∂x'/∂o = W_μ + diag(σ(ℓ) ⊙ u) W_ℓ, [..., I, H].
      const M = b.binary('add', wMu, scaleRows(b, b.binary('mul', b.unary('sigmoid', l), u!), wL));
      const jx = inner.inputJacobian!; // [..., Dh, I]
      if (want === 'dense') {
        const jInner = b.concat([jx, inner.jacobian!], -1); // ∂h'/∂s [..., Dh, D]
        b.dispose([jx, inner.jacobian!]); // dead: freed before the full-size products below
        const dOs = b.tidy(() => {
          const dO = Dh === H ? jInner : b.slice(jInner, -2, 0, H);
          return skip ? b.binary('add', dO, skipS!) : dO; // ∂o/∂s [..., H, D]
        });
        const top = b.matmul(M, dOs);
        if (dOs !== jInner) b.dispose(dOs);
        const jacobian = b.concat([top, jInner], -2);
        b.dispose([top, jInner]);
        return { value, jacobian };
      }
      // Diagonal without the D×D matrix: the h block is the inner diagonal; the x block is
      // diag(M ∂o/∂x)_i = Σ_k M[i, k] (∂o/∂x)[k, i], the row sums of M ⊙ (∂o/∂x)ᵀ.
      const dO = Dh === H ? jx : b.slice(jx, -2, 0, H);
      const dOx = skip ? b.binary('add', dO, skipX!) : dO; // [..., H, I]
      const rowSums = b.matmul(b.binary('mul', M, b.transpose(dOx)), onesH); // [..., I, 1]
      const dx = b.reshape(rowSums, [...rowSums.shape.slice(0, -2), I]);
      return { value, jacobian: b.concat([dx, inner.jacobian!], -1) };
    };
    const host = hostKernel(this.program(), context.dtype);
    return makeBoundCell({
      backend,
      kind: this.kind,
      stateSize: D,
      context,
      drive: context.inputs,
      owned,
      forward,
      hostStep: (prev, prevOff, u, uOff, out, outOff) => host.step(prev, prevOff, u!, uOff, out, outOff),
    });
  }
}

/** @internal Validates the parts of an `ar` cell; fields are named under `prefix` (`'cell'` in a spec). */
export function arFromParts(inner: unknown, readout: unknown, noise: unknown, prefix: string): ArCell {
  const core = coreOf(inner);
  if (!core) {
    throw new InvalidArgumentError(fieldName(prefix, 'inner'), 'a gru, lstm or elman cell of @pelk/models', describeValue(inner));
  }
  const nz = noise ?? 'softplus';
  if (nz !== 'softplus') throw new InvalidArgumentError(fieldName(prefix, 'noise'), "'softplus'", describeValue(noise));
  const rf = fieldName(prefix, 'readout');
  const r = readObject(readout, rf);
  checkKnownKeys(r, ['weight', 'bias', 'skip'], rf);
  const I = core.inputSize;
  const H = core.hiddenSize;
  // Shapes follow the inner cell: W [2I, H] (columns = its hiddenSize), b [2I].
  const weight = readWeight(r.weight, fieldName(rf, 'weight'), [2 * I, H]);
  const bias = readWeight(r.bias, fieldName(rf, 'bias'), [2 * I]);
  const skip = r.skip ?? false;
  if (typeof skip !== 'boolean') throw new InvalidArgumentError(fieldName(rf, 'skip'), 'a boolean', describeValue(r.skip));
  if (skip && I !== 1 && I !== H) {
    throw new InvalidArgumentError(
      fieldName(rf, 'skip'),
      `false: o = h' + x needs the inner inputSize (${I}) to be 1 or the hiddenSize (${H})`,
      'true',
    );
  }
  return new ArCell(inner as ArInnerCell, core, weight, bias, skip, nz);
}

/**
 * An autoregressive cell around a GRU, LSTM or Elman cell (FORMAT.md `"type": "ar"`). The inner
 * cell's `inputSize` is the size `I` of the emitted value; the readout weight is `[2I, H]`, the bias
 * `[2I]`. Sizes, finiteness, `skip` and `noise` are checked here, before anything touches a
 * backend, with typed errors naming the field (`readout.weight`, …).
 *
 * @example
 * ```ts
 * import { ar, gru } from '@pelk/models';
 * const cell = ar({
 *   inner: gru.torch(stateDict), // inputSize 1, hiddenSize 3
 *   readout: { weight: [[0.1, -0.2, 0.3], [0.0, 0.1, 0.0]], bias: [0, 0.5], skip: true },
 *   noise: 'softplus',
 * });
 * const drivers = Array.from({ length: 2000 }, () => [gaussian()]); // [T, 1]: one driver per step
 * const result = await evaluate(cell, drivers, { initialState: [0, 0, 0, 0] }); // states [T, 4] = [x, h]
 * ```
 */
export function ar(options: ArOptions): ArCell {
  const o = readObject(options, 'options');
  checkKnownKeys(o, ['inner', 'readout', 'noise'], 'options');
  return arFromParts(o.inner, o.readout, o.noise, '');
}
