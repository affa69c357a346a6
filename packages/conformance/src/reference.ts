/**
 * Float64 host references the suite compares backends against: plain loops, written for clarity,
 * independent of any backend's code.
 */

/** Deterministic uniform numbers in `[-1, 1)` (mulberry32). */
export function randomArray(n: number, seed: number, scale = 1): Float64Array {
  let s = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

/**
 * `s_t = A_t s_{t−1} + b_t` (or backwards in time), sequentially. `A` is `[B,T,D]` (diagonal) or
 * `[B,T,D,D]` (dense).
 */
export function linearRecurrence(
  A: ArrayLike<number>,
  b: ArrayLike<number>,
  init: ArrayLike<number>,
  B: number,
  T: number,
  D: number,
  dense: boolean,
  reverse = false,
): Float64Array {
  const out = new Float64Array(B * T * D);
  for (let bi = 0; bi < B; bi++) {
    let s = Array.from({ length: D }, (_, i) => init[bi * D + i]);
    for (let k = 0; k < T; k++) {
      const t = reverse ? T - 1 - k : k;
      const row = (bi * T + t) * D;
      const next = new Array<number>(D);
      for (let i = 0; i < D; i++) {
        let acc = b[row + i];
        if (dense) for (let j = 0; j < D; j++) acc += A[(row + i) * D + j] * s[j];
        else acc += A[row + i] * s[i];
        next[i] = acc;
      }
      s = next;
      for (let i = 0; i < D; i++) out[row + i] = s[i];
    }
  }
  return out;
}

/** `max |a − b|` (NaN if any difference is NaN). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, count = Math.min(a.length, b.length)): number {
  let m = 0;
  for (let i = 0; i < count; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Number.NaN;
    if (d > m) m = d;
  }
  return m;
}

/** `max |a|`. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
