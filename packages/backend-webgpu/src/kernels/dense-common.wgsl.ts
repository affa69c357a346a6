/**
 * Shared pieces of the dense-scan kernels. A dense element is the affine map `s ↦ A s + b`
 * stored as the augmented `D × (D+1)` row-major matrix `[A | b]` (its implicit last row is
 * `[0 … 0 1]`), so composing two elements is one `D × (D+1)` product.
 *
 * Level 0 reads `xA` `[B, T, D, D]` (`A[b, t, i, j]` multiplies `s[j]` into row `i`) and `xB`
 * `[B, T, D]` at actual time `t = reverse ? T−1−u : u`; higher levels read chunk aggregates
 * `elems` `[B, T_L, D, D+1]` in scan order. Uniforms: `T` steps at this level, `N` chunks,
 * `chunk` steps per chunk, `groups = B·N` (one cooperating group of invocations per
 * (batch, chunk)).
 */
import type { UniformField } from './program.js';

/** Sizes of one level of a dense scan. */
export interface DenseLevel {
  readonly B: number;
  readonly T: number;
  readonly chunk: number;
}

/** The uniforms of a dense-scan kernel at one level. */
export function denseUniforms(level: DenseLevel): UniformField[] {
  const N = Math.ceil(level.T / level.chunk);
  return [
    { name: 'T', type: 'i32', value: level.T },
    { name: 'N', type: 'i32', value: N },
    { name: 'chunk', type: 'i32', value: level.chunk },
    { name: 'groups', type: 'i32', value: level.B * N },
  ];
}

/**
 * Readers of the step map `[A | b]` at scan step `u`: `stepA(b, u, i, l)` = `A[i, l]`,
 * `stepB(b, u, i)` = `b[i]`, and `augEntry(b, u, e)` = entry `e = i·(D+1) + l` of `[A | b]`
 * (used to stage the whole map cooperatively).
 */
export function stepReadersWgsl(D: number, raw: boolean, reverse: boolean): string {
  const AUG = D + 1;
  if (!raw) {
    return `
fn augEntry(b : i32, u : i32, e : i32) -> f32 {
  return elems[(b * uniforms.T + u) * ${D * AUG} + e];
}
fn stepA(b : i32, u : i32, i : i32, l : i32) -> f32 {
  return augEntry(b, u, i * ${AUG} + l);
}
fn stepB(b : i32, u : i32, i : i32) -> f32 {
  return augEntry(b, u, i * ${AUG} + ${D});
}`;
  }
  const t = reverse ? 'uniforms.T - 1 - u' : 'u';
  return `
fn stepA(b : i32, u : i32, i : i32, l : i32) -> f32 {
  return xA[((b * uniforms.T + ${t}) * ${D} + i) * ${D} + l];
}
fn stepB(b : i32, u : i32, i : i32) -> f32 {
  return xB[(b * uniforms.T + ${t}) * ${D} + i];
}
fn augEntry(b : i32, u : i32, e : i32) -> f32 {
  let i = e / ${AUG};
  let l = e - i * ${AUG};
  if (l < ${D}) {
    return stepA(b, u, i, l);
  }
  return stepB(b, u, i);
}`;
}

/**
 * Locates the invocation: `g` its group within the workgroup, `lane` its index in the group,
 * `gid = b·N + k` the (batch, chunk) it works on, `len` the steps of that chunk (0 when idle).
 */
export function groupCoordsWgsl(ipg: number, groupsPerWorkgroup: number): string {
  return `
  let li = i32(localIndex);
  let g = li / ${ipg};
  let lane = li - g * ${ipg};
  let gid = (index / ${ipg * groupsPerWorkgroup}) * ${groupsPerWorkgroup} + g;
  let valid = gid < uniforms.groups;
  let k = gid % uniforms.N;
  let b = gid / uniforms.N;
  let start = k * uniforms.chunk;
  var len = 0;
  if (valid) {
    len = min(uniforms.chunk, uniforms.T - start);
  }`;
}
