/**
 * A work-efficient (Blelloch) inclusive scan for any associative operator whose prefixes act on a
 * "state": the linear recurrences (state = s_t), the Kalman filter (state = mean and covariance)
 * and the smoother's covariance recurrence. The same tree as `scan.ts`, with the element algebra
 * supplied by the caller:
 * - up-sweep, stride s = 1, 2, 4, …: `combine(i, e)` folds the aggregate at `i` (earlier) into
 *   the aggregate at `e = min(j, n − 1)` (later) for the node ending at `j = 2s(k+1) − 1`;
 * - down-sweep from the top, carrying the state entering each node (`initState(n − 1)`): the
 *   left child inherits it (`copyState(e, i)`), the right child gets `apply(i, i, e)` — the left
 *   child's aggregate applied to it;
 * - output: the state after element k is the state entering k + 1 (`emit(k, k + 1)`), and the
 *   last is the root aggregate applied to the initial state (`emitRoot(n − 1)`).
 */
export interface TreeScanAlgebra {
  /** Aggregate at `e` ← (aggregate at `i`, then aggregate at `e`). */
  combine(i: number, e: number): void;
  /** State slot `to` ← aggregate `agg` applied to state slot `from` (`from !== to`). */
  apply(agg: number, from: number, to: number): void;
  /** State slot `to` ← state slot `from`. */
  copyState(from: number, to: number): void;
  /** State slot `at` ← the initial state. */
  initState(at: number): void;
  /** Output k ← state slot `from`. */
  emit(k: number, from: number): void;
  /** Output `last` ← root aggregate (at `last`) applied to the initial state. */
  emitRoot(last: number): void;
}

/** Runs the scan over `n ≥ 1` elements. */
export function treeScan(n: number, op: TreeScanAlgebra): void {
  for (let s = 1; s < n; s *= 2) {
    for (let j = 2 * s - 1; j - s < n - 1; j += 2 * s) op.combine(j - s, Math.min(j, n - 1));
  }
  op.initState(n - 1);
  let top = 1;
  while (top * 2 < n) top *= 2;
  for (let s = n > 1 ? top : 0; s >= 1; s >>= 1) {
    for (let j = 2 * s - 1; j - s < n - 1; j += 2 * s) {
      const i = j - s;
      const e = Math.min(j, n - 1);
      op.copyState(e, i);
      op.apply(i, i, e);
    }
  }
  for (let k = 0; k < n - 1; k++) op.emit(k, k + 1);
  op.emitRoot(n - 1);
}
