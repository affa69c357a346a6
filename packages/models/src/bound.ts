/**
 * The part of `bind` every cell shares: checking the bind context, owning the uploaded tensors, and
 * turning one shape-generic forward function into `apply`, `linearize` and `step`.
 */
import {
  type BindContext,
  type BoundCell,
  type ComputeBackend,
  type HostArray,
  InvalidArgumentError,
  type JacobianKind,
  ShapeError,
  type Tensor,
  describeValue,
} from '@pelk/core';
import { sameShape, shapeText } from './host.js';

/** What a forward call must produce besides the value. */
export type Want = 'value' | JacobianKind;

/**
 * One transition on any leading shape: `prev` `[..., D]` with a matching `drive` `[..., G]`
 * (the precomputed input projection, the raw inputs, or `null` for autonomous cells).
 * Returns `value` `[..., D]` and, when asked, `jacobian` `[..., D, D]` (dense) or `[..., D]`.
 */
export type ForwardFn = (prev: Tensor, drive: Tensor | null, want: Want) => { value: Tensor; jacobian?: Tensor };

/** Checks the bind context against a cell's sizes before anything is allocated. */
export function checkContext(ctx: BindContext, inputSize: number, kind: string): void {
  if (!ctx || typeof ctx !== 'object') throw new InvalidArgumentError('context', 'a BindContext', describeValue(ctx));
  if (ctx.dtype !== 'float32' && ctx.dtype !== 'float64') {
    throw new InvalidArgumentError('context.dtype', "'float32' or 'float64'", describeValue(ctx.dtype));
  }
  if (!Number.isInteger(ctx.batch) || ctx.batch < 1) {
    throw new InvalidArgumentError('context.batch', 'a positive integer', describeValue(ctx.batch));
  }
  if (!Number.isInteger(ctx.steps) || ctx.steps < 1) {
    throw new InvalidArgumentError('context.steps', 'a positive integer', describeValue(ctx.steps));
  }
  if (inputSize === 0) {
    if (ctx.inputs !== null && ctx.inputs !== undefined) {
      throw new InvalidArgumentError('context.inputs', `null (a '${kind}' cell takes no inputs)`, 'a tensor');
    }
    return;
  }
  const expected = [ctx.batch, ctx.steps, inputSize];
  const x = ctx.inputs;
  if (!x || !sameShape(x.shape, expected)) {
    throw new ShapeError('context.inputs', `a tensor of ${shapeText(expected)}`, x ? shapeText(x.shape) : describeValue(x));
  }
  if (x.dtype !== ctx.dtype) throw new InvalidArgumentError('context.inputs.dtype', `'${ctx.dtype}'`, `'${x.dtype}'`);
}

/**
 * Runs `build` inside a `tidy` so its temporaries are freed, while every tensor passed to `own`
 * survives and is returned (the bound cell disposes them). If `build` throws, the owned tensors are
 * freed too, so a failed bind leaks nothing.
 */
export function uploadOwned(backend: ComputeBackend, build: (own: <T extends Tensor>(t: T) => T) => void): Tensor[] {
  const owned: Tensor[] = [];
  const own = <T extends Tensor>(t: T): T => {
    owned.push(backend.keep(t));
    return t;
  };
  try {
    backend.tidy(() => build(own));
  } catch (err) {
    backend.dispose(owned);
    throw err;
  }
  return owned;
}

/** Everything {@link makeBoundCell} needs. */
export interface BoundCellParts {
  readonly backend: ComputeBackend;
  readonly kind: string;
  readonly stateSize: number;
  readonly context: BindContext;
  /** `[B, T, G]` drive tensor (owned or the caller's inputs), or `null`. */
  readonly drive: Tensor | null;
  /** Tensors the bound cell owns and frees in `dispose`. */
  readonly owned: readonly Tensor[];
  readonly forward: ForwardFn;
  /**
   * Optional fused host kernel for one step of one sequence: reads the state at `prev[prevOff..]`
   * and the drive row at `drive[driveOff..]`, writes the next state at `out[outOff..]`. Used by
   * `rollout` on host-memory backends (those with `hostData`); must match `forward` up to rounding.
   */
  readonly hostStep?: HostStep;
}

/** One step of one sequence on host arrays (see {@link BoundCellParts.hostStep}). */
export type HostStep = (
  prev: HostArray,
  prevOff: number,
  drive: HostArray | null,
  driveOff: number,
  out: HostArray,
  outOff: number,
) => void;

/**
 * Builds a {@link BoundCell} from one forward function: `apply` and `linearize` call it on
 * `[B, T, D]` with the whole drive, `step` on `[B, D]` with the drive at step `t`.
 */
export function makeBoundCell(p: BoundCellParts): BoundCell {
  const { backend, stateSize: D, drive, forward } = p;
  const { batch: B, steps: T } = p.context;
  let disposed = false;
  const alive = (): void => {
    if (disposed) throw new InvalidArgumentError(`${p.kind} bound cell`, 'a cell that is still bound', 'a disposed one');
  };
  const checkPrev = (prev: Tensor, shape: readonly number[]): void => {
    if (!sameShape(prev?.shape, shape)) {
      throw new ShapeError('prev', shapeText(shape), prev?.shape ? shapeText(prev.shape) : describeValue(prev));
    }
  };
  return {
    apply(prev) {
      alive();
      checkPrev(prev, [B, T, D]);
      return forward(prev, drive, 'value').value;
    },
    linearize(prev, kind) {
      alive();
      if (kind !== 'dense' && kind !== 'diagonal') {
        throw new InvalidArgumentError('kind', "'dense' or 'diagonal'", describeValue(kind));
      }
      checkPrev(prev, [B, T, D]);
      const { value, jacobian } = forward(prev, drive, kind);
      return { value, jacobian: jacobian! };
    },
    step(prev, t) {
      alive();
      checkPrev(prev, [B, D]);
      if (!Number.isInteger(t) || t < 0 || t >= T) {
        throw new InvalidArgumentError('t', `an integer in [0, ${T - 1}]`, describeValue(t));
      }
      return forward(prev, drive ? backend.timeStep(drive, t) : null, 'value').value;
    },
    rollout(init) {
      alive();
      const hostStep = p.hostStep;
      if (!hostStep || !backend.hostData) return undefined;
      checkPrev(init, [B, D]);
      // A fresh tensor, filled in place before anyone else sees it.
      const out = backend.fill([B, T, D], 0, p.context.dtype);
      const o = backend.hostData(out);
      const s0 = backend.hostData(init);
      const x = drive ? backend.hostData(drive) : null;
      const G = drive ? drive.shape[drive.shape.length - 1] : 0;
      for (let b = 0; b < B; b++) {
        let prev = s0;
        let prevOff = b * D;
        for (let t = 0; t < T; t++) {
          const row = b * T + t;
          hostStep(prev, prevOff, x, row * G, o, row * D);
          prev = o;
          prevOff = row * D;
        }
      }
      return out;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      backend.dispose(p.owned);
    },
  };
}

/** `diag(c) W` for `c` `[..., H]` and `W` `[H, K]` (or `[..., H, K]`): scales row `i` by `c_i`. */
export function scaleRows(backend: ComputeBackend, c: Tensor, w: Tensor): Tensor {
  return backend.binary('mul', backend.reshape(c, [...c.shape, 1]), w);
}

/** `W diag(c)` for `W` `[K, H]` (or `[..., K, H]`) and `c` `[..., H]`: scales column `j` by `c_j`. */
export function scaleCols(backend: ComputeBackend, w: Tensor, c: Tensor): Tensor {
  const s = c.shape;
  return backend.binary('mul', w, backend.reshape(c, [...s.slice(0, -1), 1, s[s.length - 1]]));
}

/** Sum of several tensors of one shape (broadcasting allowed). */
export function sum(backend: ComputeBackend, ...terms: Tensor[]): Tensor {
  let acc = terms[0];
  for (let k = 1; k < terms.length; k++) acc = backend.binary('add', acc, terms[k]);
  return acc;
}

/**
 * `out[oOff + j] = Σ_k x[xOff + k] · Wt[k, colStart + j]` for `cols` outputs, with `Wt` the
 * transposed recurrent matrix (`[K, N]` row-major): the matrix–vector product of host kernels.
 * Eight values of `x` are folded into each pass over the output (measured fastest in V8 without
 * SIMD, ~0.9 GMAC/s on this project's machines, vs ~0.7 for dot products).
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
