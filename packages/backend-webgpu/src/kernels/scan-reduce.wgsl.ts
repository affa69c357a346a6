/**
 * Pass 1 of reduce-then-scan: each invocation folds the `chunk` consecutive elements of one
 * (batch, chunk, channel) into a single aggregate with the algebra's `combineElem`
 * (chunk − 1 combines, sequential in registers; neighbouring invocations take neighbouring
 * channels, hence neighbouring addresses at every step).
 * Input: raw elements (level 0) or `elems` `[E, B, T_L, D]`; output `[E, B, N, D]` component
 * planes, N = ⌈T_L / chunk⌉, in scan order.
 */
import type { ScanAlgebra } from './scan-algebra.js';
import { chunkCoordsWgsl, loadElemWgsl } from './scan-common.wgsl.js';

/** User code of the chunk-reduce kernel for `alg` (raw level 0 or packed level ≥ 1). */
export function scanReduceWgsl(alg: ScanAlgebra, raw: boolean, reverse: boolean): string {
  const stores = Array.from({ length: alg.elementSize }, (_, c) => `  result[${c} * uniforms.count + index] = acc[${c}];`);
  return /* wgsl */ `
${alg.wgsl}
${raw ? alg.rawWgsl : ''}
${loadElemWgsl(alg, raw, reverse)}

fn main(index : i32) {
  if (index >= uniforms.count) {
    return;
  }
${chunkCoordsWgsl}
  var acc = loadElem(b, start, d);
  for (var u = start + 1; u < end; u = u + 1) {
    acc = combineElem(acc, loadElem(b, u, d));
  }
${stores.join('\n')}
}
`;
}
