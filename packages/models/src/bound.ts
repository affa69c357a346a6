/**
 * The part of `bind` every cell shares: checking the bind context, owning the uploaded tensors, and
 * turning one shape-generic forward function into `apply`, `linearize` and `step`.
 */
import {
  type BindContext,
  type BoundCell,
  type ComputeBackend,
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
}

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
