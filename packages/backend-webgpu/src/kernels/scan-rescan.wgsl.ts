/**
 * Pass 3 of reduce-then-scan (and, with a single chunk, the sequential scan of the top level):
 * each invocation starts from the state entering its chunk — the seed for chunk 0, else the
 * carry, i.e. the state after chunk k−1 solved one level up — and applies the chunk's elements
 * one by one, writing every state.
 * Inputs: raw elements (level 0) or `elems` `[E, B, T_L, D]`; the algebra's seed bindings
 * `[B, D]`; optional `carry` `[S, B, N, D]` (component planes, scan order).
 * Output: either all state components as planes `[S, B, T_L, D]` in scan order (levels ≥ 1), or
 * one component `[B, T, D]` at actual time (level 0; reverse maps step u to t = T−1−u).
 */
import type { ScanAlgebra } from './scan-algebra.js';
import { chunkCoordsWgsl, loadElemWgsl } from './scan-common.wgsl.js';

/** What the rescan writes: all components (packed planes) or one component at actual time. */
export type RescanOutput = { readonly kind: 'packed' } | { readonly kind: 'component'; readonly component: number };

/** User code of the chunk-rescan kernel for `alg`. */
export function scanRescanWgsl(alg: ScanAlgebra, raw: boolean, reverse: boolean, hasCarry: boolean, output: RescanOutput): string {
  const S = alg.stateSize;
  const carryParts = Array.from({ length: S }, (_, c) => `carry[${c} * uniforms.count + j]`);
  const seed = hasCarry
    ? `  var s : State;
  if (k == 0) {
    s = seedState(b, d);
  } else {
    let j = index - uniforms.D;  // same (b, d), chunk k − 1
    s = State(${carryParts.join(', ')});
  }`
    : '  var s = seedState(b, d);';
  let store: string;
  if (output.kind === 'packed') {
    store = Array.from({ length: S }, (_, c) => `    result[${c} * plane + o] = s[${c}];`).join('\n');
    store = `    let o = (b * uniforms.T + u) * uniforms.D + d;\n${store}`;
  } else {
    const t = reverse ? 'uniforms.T - 1 - u' : 'u';
    store = `    result[(b * uniforms.T + ${t}) * uniforms.D + d] = s[${output.component}];`;
  }
  return /* wgsl */ `
${alg.wgsl}
${raw ? alg.rawWgsl : ''}
${alg.seedWgsl}
${loadElemWgsl(alg, raw, reverse)}

fn main(index : i32) {
  if (index >= uniforms.count) {
    return;
  }
${chunkCoordsWgsl}
  let plane = uniforms.B * uniforms.T * uniforms.D;
${seed}
  for (var u = start; u < end; u = u + 1) {
    s = applyElem(s, loadElem(b, u, d));
${store}
  }
}
`;
}
