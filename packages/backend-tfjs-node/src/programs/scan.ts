/**
 * A work-efficient associative scan as a tfjs tensor program (odd–even recursion, Blelloch's
 * "contract, recurse, expand"): combine neighbouring pairs, scan the half-length sequence, then
 * fill in the even positions. Work O(T) combines, depth O(log T) levels, each level a constant
 * number of tfjs ops over the whole batch — no per-step loop. Elements are tuples of tensors whose
 * axis 1 is time (`[B, T, ...]`), so every channel and batch entry is scanned at once.
 */
import type * as tfc from '@tensorflow/tfjs-core';

export type Tf = typeof tfc;

/** A tensor's shape as a plain array (tfjs types it per rank). */
export function dims(x: tfc.Tensor): number[] {
  return x.shape as number[];
}
/** One scan element per time step: tensors with time on axis 1. */
export type Element = readonly tfc.Tensor[];
/** The associative operator: `combine(earlier, later)`. */
export type Combine = (earlier: Element, later: Element) => Element;

/**
 * tfjs's `cpu` backend copies any non-contiguous slice element by element (≈ 1 µs each), while
 * its `gather` is a tight loop; elsewhere (wasm, webgpu, tensorflow) slices of reshaped views are
 * the fast path and `stridedSlice`/`reverse` the slow ones (measured: wasm, [1, 10⁴, 64]:
 * stridedSlice 118 ms, reverse 66 ms, reshape + slice 3.5 ms). So time-axis selection gathers on
 * `cpu` and slices elsewhere.
 */
function gathers(tf: Tf): boolean {
  return tf.getBackend() === 'cpu';
}

/** `x[:, start : start + count]` along the time axis. */
export function sliceTime(tf: Tf, x: tfc.Tensor, start: number, count: number): tfc.Tensor {
  const shape = dims(x);
  if (gathers(tf) && shape[0] > 1) return tf.gather(x, tf.range(start, start + count, 1, 'int32'), 1);
  const begin = shape.map((_, k) => (k === 1 ? start : 0));
  const size = shape.map((d, k) => (k === 1 ? count : d));
  return tf.slice(x, begin, size);
}

/** `x[:, first + 2k]` for `k < count` (needs `first + 2·count − 1 ≤ T`). */
function everyOther(tf: Tf, x: tfc.Tensor, first: number, count: number): tfc.Tensor {
  const shape = dims(x);
  if (gathers(tf)) return tf.gather(x, tf.range(first, first + 2 * count - 1, 2, 'int32'), 1);
  // A window of `count` consecutive pairs, viewed as [B, count, 2, R] (trailing axes flattened:
  // wasm slices rank > 4 element by element, 1.4 s for [1, 250, 2, 64, 64]), and one phase of it.
  const fits = first + 2 * count <= shape[1];
  const window = sliceTime(tf, x, fits ? first : first - 1, 2 * count);
  const rest = shape.slice(2);
  const R = rest.reduce((a, d) => a * d, 1);
  const pairs = tf.reshape(window, [shape[0], count, 2, R]);
  const phase = tf.slice(pairs, [0, 0, fits ? 0 : 1, 0], [shape[0], count, 1, R]);
  return tf.reshape(phase, [shape[0], count, ...rest]);
}

/** Interleaves `even` (length `ne`) and `odd` (length `no`, `ne − no ∈ {0, 1}`) along time. */
function interleave(tf: Tf, even: tfc.Tensor, odd: tfc.Tensor): tfc.Tensor {
  const ne = dims(even)[1];
  const no = dims(odd)[1];
  const paired = ne === no ? even : sliceTime(tf, even, 0, no);
  const rest = dims(even).slice(2);
  const R = rest.reduce((a, d) => a * d, 1);
  const B = dims(even)[0];
  // Stacked as rank 4 ([B, no, 2, R]) for the same reason as above.
  const stacked = tf.stack([tf.reshape(paired, [B, no, R]), tf.reshape(odd, [B, no, R])], 2);
  const both = tf.reshape(stacked, [B, 2 * no, ...rest]);
  return ne === no ? both : tf.concat([both, sliceTime(tf, even, no, 1)], 1);
}

/**
 * Inclusive scan of `elements` under `combine`: entry t of the result is
 * `e_0 ∘ e_1 ∘ … ∘ e_t`. Call inside `tf.tidy`; the intermediates are ordinary tensors.
 *
 * @example
 * ```ts
 * // prefix sums along time
 * const [s] = associativeScan(tf, [x], ([a], [b]) => [tf.add(a, b)]);
 * ```
 */
export function associativeScan(tf: Tf, elements: Element, combine: Combine): Element {
  const T = dims(elements[0])[1];
  if (T <= 1) return elements;
  const half = Math.floor(T / 2);
  // Each level in its own tidy: only the half-length pairs and prefixes outlive their level, so
  // the peak is a few times the input, not the sum of every level's temporaries (what lets DEER's
  // [T, D, D] scan fit tfjs-wasm's heap at T = 10,000, D = 64).
  const pairs = tf.tidy(() => combine(elements.map((e) => everyOther(tf, e, 0, half)), elements.map((e) => everyOther(tf, e, 1, half))) as tfc.Tensor[]);
  // prefix[k] = e_0 ∘ … ∘ e_{2k+1}: the odd outputs.
  const prefix = associativeScan(tf, pairs, combine);
  if (prefix !== pairs) tf.dispose(pairs as tfc.Tensor[]);
  const nEven = T - half;
  const out = tf.tidy(() => {
    let evenOut: Element;
    if (nEven > 1) {
      // out[2k] = prefix[k − 1] ∘ e_{2k} for k ≥ 1; out[0] = e_0.
      const later = elements.map((e) => everyOther(tf, e, 2, nEven - 1));
      const filled = combine(
        prefix.map((p) => sliceTime(tf, p, 0, nEven - 1)),
        later,
      );
      evenOut = elements.map((e, i) => tf.concat([sliceTime(tf, e, 0, 1), filled[i]], 1));
    } else {
      evenOut = elements.map((e) => sliceTime(tf, e, 0, 1));
    }
    return evenOut.map((e, i) => interleave(tf, e, prefix[i]));
  });
  tf.dispose(prefix as tfc.Tensor[]);
  return out;
}

/** Time-reverses every tensor of an element (a gather: tfjs's `reverse` is slow on cpu and wasm). */
export function reverseTime(tf: Tf, xs: Element): tfc.Tensor[] {
  if (xs.length === 0) return [];
  const T = dims(xs[0])[1];
  const order = tf.range(T - 1, -1, -1, 'int32');
  return xs.map((x) => tf.gather(x, order, 1));
}
