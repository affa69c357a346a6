/**
 * The part of `bind` every cell shares: checking the bind context, owning the uploaded tensors, and
 * turning one shape-generic forward function into `apply`, `linearize` and `step`.
 */
import {
  type BindContext,
  type BoundCell,
  type ComputeBackend,
  type DType,
  type HostStepFn,
  InvalidArgumentError,
  type JacobianKind,
  ShapeError,
  type Tensor,
  checkBindContext,
  describeValue,
  hostRollout,
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

/** Checks the bind context against a cell's sizes before anything is allocated (core's check). */
export const checkContext = checkBindContext;

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
export type HostStep = HostStepFn;

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
  const checkKind = (kind: JacobianKind): void => {
    if (kind !== 'dense' && kind !== 'diagonal') {
      throw new InvalidArgumentError('kind', "'dense' or 'diagonal'", describeValue(kind));
    }
  };
  return {
    apply(prev) {
      alive();
      checkPrev(prev, [B, T, D]);
      // tidy: the forward's temporaries are freed as soon as it returns (only the value survives).
      return backend.tidy(() => forward(prev, drive, 'value').value);
    },
    linearize(prev, kind) {
      alive();
      checkKind(kind);
      checkPrev(prev, [B, T, D]);
      return backend.tidy(() => {
        const { value, jacobian } = forward(prev, drive, kind);
        return { value, jacobian: jacobian! };
      });
    },
    linearizeRange(prev, start, kind) {
      alive();
      checkKind(kind);
      const n = prev?.shape?.[1] ?? 0;
      if (!Number.isInteger(start) || start < 0 || start + n > T) {
        throw new InvalidArgumentError('start', `an integer in [0, ${T - n}] (prev covers ${n} steps)`, describeValue(start));
      }
      checkPrev(prev, [B, n, D]);
      return backend.tidy(() => {
        const { value, jacobian } = forward(prev, drive && backend.slice(drive, 1, start, n), kind);
        return { value, jacobian: jacobian! };
      });
    },
    step(prev, t) {
      alive();
      checkPrev(prev, [B, D]);
      if (!Number.isInteger(t) || t < 0 || t >= T) {
        throw new InvalidArgumentError('t', `an integer in [0, ${T - 1}]`, describeValue(t));
      }
      return backend.tidy(() => forward(prev, drive ? backend.timeStep(drive, t) : null, 'value').value);
    },
    rollout(init) {
      alive();
      const hostStep = p.hostStep;
      if (!hostStep || !backend.hostData) return undefined;
      checkPrev(init, [B, D]);
      return hostRollout(backend, hostStep, init, drive, [B, T, D], alive);
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

/** One block of {@link rowScaledSum}: rows `[row, row + R)`, columns `[col, col + K)` of the output. */
export interface RowScaledBlock {
  readonly row?: number;
  readonly col?: number;
  /** `[c, M]` pairs, `c` `[..., R]` and `M` `[R, K]`: the block gets `Σ diag(c) M`. */
  readonly terms: readonly (readonly [Tensor, Tensor])[];
  /** `d` `[..., R]` (square blocks): the block's diagonal also gets `d`. */
  readonly diag?: Tensor;
  /** A constant added to the block's diagonal (square blocks). */
  readonly diagConstant?: number;
}

/**
 * A dense Jacobian `[...lead, rows, cols]` assembled from row-scaled constant matrices, zero outside
 * the blocks: every block gets `Σ_g diag(c_g) M_g + diag(d) + a·I`. On host-memory backends (those
 * with `hostData`) it is written into ONE fresh tensor (no full-size temporaries: the peak of a
 * dense linearisation is the Jacobian itself); elsewhere it is summed with backend ops, each
 * partial sum freed as soon as the next exists (at most three full-size tensors live at once).
 */
export function rowScaledSum(
  b: ComputeBackend,
  lead: readonly number[],
  rows: number,
  cols: number,
  blocks: readonly RowScaledBlock[],
  dtype: DType,
): Tensor {
  const hostData = b.hostData?.bind(b);
  if (hostData) {
    const out = b.fill([...lead, rows, cols], 0, dtype);
    const o = hostData(out);
    const n = o.length / (rows * cols);
    for (const blk of blocks) {
      const r0 = blk.row ?? 0;
      const c0 = blk.col ?? 0;
      for (const [c, m] of blk.terms) {
        const cv = hostData(c);
        const mv = hostData(m);
        const R = c.shape[c.shape.length - 1];
        const K = m.shape[m.shape.length - 1];
        for (let e = 0; e < n; e++) {
          for (let i = 0; i < R; i++) {
            const ci = cv[e * R + i];
            const base = (e * rows + r0 + i) * cols + c0;
            const mb = i * K;
            for (let j = 0; j < K; j++) o[base + j] += ci * mv[mb + j];
          }
        }
      }
      const d = blk.diag ? hostData(blk.diag) : null;
      const a = blk.diagConstant ?? 0;
      if (d || a !== 0) {
        const R = blk.diag ? blk.diag.shape[blk.diag.shape.length - 1] : blk.terms[0][0].shape[blk.terms[0][0].shape.length - 1];
        for (let e = 0; e < n; e++) {
          for (let i = 0; i < R; i++) o[(e * rows + r0 + i) * cols + c0 + i] += (d ? d[e * R + i] : 0) + a;
        }
      }
    }
    return out;
  }
  // Op path: each block summed term by term, then the blocks placed with concat.
  const blockTensors = blocks.map((blk) => {
    let acc: Tensor | undefined;
    const add = (t: Tensor): void => {
      if (!acc) {
        acc = t;
        return;
      }
      const next = b.binary('add', acc, t);
      b.dispose([acc, t]);
      acc = next;
    };
    for (const [c, m] of blk.terms) add(b.tidy(() => scaleRows(b, c, m)));
    if (blk.diag) add(b.diagEmbed(blk.diag));
    if (blk.diagConstant) {
      const R = blk.diag ? blk.diag.shape[blk.diag.shape.length - 1] : blk.terms[0][0].shape[blk.terms[0][0].shape.length - 1];
      const eye = new Float64Array(R * R);
      for (let i = 0; i < R; i++) eye[i * R + i] = blk.diagConstant;
      add(b.tidy(() => b.binary('add', b.fill([...lead, R, R], 0, dtype), b.fromArray(eye, [R, R], dtype))));
    }
    return { blk, t: acc! };
  });
  if (blockTensors.length === 1 && (blocks[0].row ?? 0) === 0 && (blocks[0].col ?? 0) === 0) return blockTensors[0].t;
  // Block layout: a grid of row bands, each a concat of its blocks (missing blocks are zeros).
  const rowStarts = [...new Set(blocks.map((x) => x.row ?? 0))].sort((x, y) => x - y);
  const bands = rowStarts.map((r0, k) => {
    const height = (rowStarts[k + 1] ?? rows) - r0;
    const inBand = blockTensors.filter((x) => (x.blk.row ?? 0) === r0).sort((x, y) => (x.blk.col ?? 0) - (y.blk.col ?? 0));
    const parts: Tensor[] = [];
    let col = 0;
    for (const { blk, t } of inBand) {
      const c0 = blk.col ?? 0;
      if (c0 > col) parts.push(b.fill([...lead, height, c0 - col], 0, dtype));
      parts.push(t);
      col = c0 + t.shape[t.shape.length - 1];
    }
    if (col < cols) parts.push(b.fill([...lead, height, cols - col], 0, dtype));
    const band = parts.length === 1 ? parts[0] : b.concat(parts, -1);
    if (parts.length > 1) b.dispose(parts);
    return band;
  });
  const out = bands.length === 1 ? bands[0] : b.concat(bands, -2);
  if (bands.length > 1) b.dispose(bands);
  return out;
}

/**
 * The diagonal counterpart of {@link rowScaledSum} for one block: `Σ_g c_g ⊙ m_g + d`, with each
 * partial sum freed as soon as the next exists.
 */
export function weightedSum(b: ComputeBackend, terms: readonly (readonly [Tensor, Tensor])[], d?: Tensor): Tensor {
  let acc: Tensor | undefined;
  for (const [c, m] of terms) {
    const t = b.binary('mul', c, m);
    if (!acc) acc = t;
    else {
      const next = b.binary('add', acc, t);
      b.dispose([acc, t]);
      acc = next;
    }
  }
  if (d) {
    const next = b.binary('add', acc!, d);
    b.dispose(acc!);
    acc = next;
  }
  return acc!;
}
