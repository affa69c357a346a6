/**
 * The host kernel of an {@link ArProgram}: the autoregressive cell over a GRU, LSTM or Elman
 * program, on the packed state `[x, h]`. The drive rows are the drivers `u_t` themselves; each step
 * projects the emitted value `x` with the inner kernel, runs it, and reads out the next value.
 *
 * Jacobian (rows `x'`, `h'`; columns `x`, `h`), with `Jx = ∂h'/∂x`, `Jh = ∂h'/∂h` of the inner cell,
 * `∂o/∂s = P [Jx, Jh] + skip·[E, 0]` (`P`: the first `H` rows; `E` ones for I = 1, the identity for
 * I = H) and `M = ∂x'/∂o = W_μ + diag(σ(ℓ) ⊙ u) W_ℓ` (softplus' = sigmoid):
 * `J = [[M ∂o/∂s], [Jx, Jh]]`.
 */
import type { DType, HostArray } from '../backend.js';
import type { ArProgram } from '../program.js';
import { type HostRnnKernel, hostRnnKernel, storedAs } from './host-rnn.js';

/** Numerically stable `log(1 + eˣ)`. */
function softplus(v: number): number {
  return v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
}

/** The `ar` program's kernel, with its weights as `dtype` stores them. */
export function hostArKernel(p: ArProgram, dtype: DType): HostRnnKernel {
  const inner = hostRnnKernel(p.inner, dtype);
  const I = p.inputSize;
  const H = p.inner.hiddenSize;
  const Dh = inner.stateSize;
  const D = I + Dh;
  const W = storedAs(dtype, p.readout.weight); // [2I, H]
  const bias = storedAs(dtype, p.readout.bias);
  const skip = p.readout.skip;
  // Scratch of one step.
  const drive = new Float64Array(inner.driveSize);
  const h2 = new Float64Array(Dh);
  const o = new Float64Array(H);
  const l = new Float64Array(I);
  const M = new Float64Array(I * H);
  const Jh = new Float64Array(Dh * Dh);
  const Jx = new Float64Array(Dh * I);
  /** The readout from `h2` (the inner cell's new state) and `x`: `o`, then `x'` into `out[outOff..outOff+I)` and ℓ into `l`. */
  const readout = (x: HostArray, xOff: number, u: HostArray, uOff: number, out: HostArray | Float64Array, outOff: number): void => {
    for (let k = 0; k < H; k++) o[k] = h2[k] + (skip ? x[xOff + (I === 1 ? 0 : k)] : 0);
    for (let i = 0; i < I; i++) {
      let mu = bias[i];
      let li = bias[I + i];
      for (let k = 0; k < H; k++) {
        mu += W[i * H + k] * o[k];
        li += W[(I + i) * H + k] * o[k];
      }
      l[i] = li;
      out[outOff + i] = mu + softplus(li) * u[uOff + i];
    }
  };
  return {
    driveSize: I,
    stateSize: D,
    // The drive rows are the drivers as given.
    project(x, xOff, out, outOff) {
      for (let i = 0; i < I; i++) out[outOff + i] = x[xOff + i];
    },
    step(prev, prevOff, u, uOff, out, outOff) {
      inner.project(prev, prevOff, drive, 0);
      inner.step(prev, prevOff + I, drive, 0, h2, 0);
      for (let r = 0; r < Dh; r++) out[outOff + I + r] = h2[r];
      readout(prev, prevOff, u, uOff, out, outOff);
    },
    linearize(prev, prevOff, u, uOff, value, valueOff, jac, jacOff, dense) {
      inner.project(prev, prevOff, drive, 0);
      inner.linearize(prev, prevOff + I, drive, 0, h2, 0, Jh, 0, dense, Jx);
      for (let r = 0; r < Dh; r++) value[valueOff + I + r] = h2[r];
      readout(prev, prevOff, u, uOff, value, valueOff);
      for (let i = 0; i < I; i++) {
        const s = (1 / (1 + Math.exp(-l[i]))) * u[uOff + i];
        for (let k = 0; k < H; k++) M[i * H + k] = W[i * H + k] + s * W[(I + i) * H + k];
      }
      /** `(∂o/∂x)[k, j]`. */
      const dOx = (k: number, j: number) => Jx[k * I + j] + (skip && j === (I === 1 ? 0 : k) ? 1 : 0);
      if (!dense) {
        for (let i = 0; i < I; i++) {
          let d = 0;
          for (let k = 0; k < H; k++) d += M[i * H + k] * dOx(k, i);
          jac[jacOff + i] = d;
        }
        for (let r = 0; r < Dh; r++) jac[jacOff + I + r] = Jh[r];
        return;
      }
      for (let i = 0; i < I; i++) {
        const row = jacOff + i * D;
        for (let j = 0; j < I; j++) {
          let d = 0;
          for (let k = 0; k < H; k++) d += M[i * H + k] * dOx(k, j);
          jac[row + j] = d;
        }
        for (let j = 0; j < Dh; j++) {
          let d = 0;
          for (let k = 0; k < H; k++) d += M[i * H + k] * Jh[k * Dh + j];
          jac[row + I + j] = d;
        }
      }
      for (let r = 0; r < Dh; r++) {
        const row = jacOff + (I + r) * D;
        for (let j = 0; j < I; j++) jac[row + j] = Jx[r * I + j];
        for (let j = 0; j < Dh; j++) jac[row + I + j] = Jh[r * Dh + j];
      }
    },
  };
}
