/**
 * How core picks between a backend's fused kernels and a cell's op-by-op binding.
 */
import type { ComputeBackend } from '../backend.js';
import type { BindContext, BoundCell, Cell } from '../cell.js';
import { InvalidArgumentError } from '../errors.js';
import type { FusedCell } from '../program.js';

/** The backend's fused binding of the cell's program, or `undefined` when either side has none. */
export function bindFused(backend: ComputeBackend, cell: Cell, context: BindContext): FusedCell | undefined {
  if (!backend.bindProgram || typeof cell.program !== 'function') return undefined;
  const program = cell.program();
  return program ? backend.bindProgram(program, context) : undefined;
}

/**
 * A {@link BoundCell} bound on first use. Beside a fused cell, the op-by-op binding (its uploaded
 * weights and input projection) is made only if a solver path the fused cell does not cover needs
 * it, so a fused evaluation holds one input projection, not two.
 */
export function lazyBound(cell: Cell, backend: ComputeBackend, context: BindContext): BoundCell {
  let bound: BoundCell | undefined;
  let disposed = false;
  const get = (): BoundCell => {
    if (disposed) throw new InvalidArgumentError(`${cell.kind} bound cell`, 'a cell that is still bound', 'a disposed one');
    bound ??= cell.bind(backend, context);
    return bound;
  };
  // No `linearizeRange`: whether the binding would have one is not known before binding, and the
  // fused cell linearises ranges itself.
  return {
    apply: (prev) => get().apply(prev),
    linearize: (prev, kind) => get().linearize(prev, kind),
    step: (prev, t) => get().step(prev, t),
    rollout: (init) => get().rollout?.(init),
    dispose() {
      disposed = true;
      bound?.dispose();
    },
  };
}
