/**
 * WGSL snippets shared by the chunked-scan kernels (reduce and rescan).
 *
 * Levels: level 0 reads raw elements through the algebra's `rawElem` at actual time
 * `t = reverse ? T−1−u : u` for scan step `u`; every higher level reads the chunk aggregates of
 * the level below from `elems`, laid out as component planes `[elementSize, B, T_L, D]` in scan
 * order (plane `c` holds component `c`, so neighbouring channels stay neighbouring addresses).
 * Uniforms (all levels): `T` steps at this level, `N` chunks, `chunk` steps per chunk, `B`, `D`,
 * `count = B·N·D` invocations (one per (batch, chunk, channel), channel fastest).
 */
import type { ScanAlgebra } from './scan-algebra.js';
import type { UniformField } from './program.js';

/** `fn loadElem(b, u, d) -> Elem`: element at scan step `u` of this level. */
export function loadElemWgsl(alg: ScanAlgebra, raw: boolean, reverse: boolean): string {
  if (raw) {
    const t = reverse ? 'uniforms.T - 1 - u' : 'u';
    return `
fn loadElem(b : i32, u : i32, d : i32) -> Elem {
  return rawElem(b, ${t}, d);
}`;
  }
  const parts = Array.from({ length: alg.elementSize }, (_, c) => `elems[${c} * plane + i]`);
  return `
fn loadElem(b : i32, u : i32, d : i32) -> Elem {
  let plane = uniforms.B * uniforms.T * uniforms.D;
  let i = (b * uniforms.T + u) * uniforms.D + d;
  return Elem(${parts.join(', ')});
}`;
}

/** Decomposes the flat invocation index into (b, k, d), channel fastest. */
export const chunkCoordsWgsl = `
  let d = index % uniforms.D;
  let bk = index / uniforms.D;
  let k = bk % uniforms.N;
  let b = bk / uniforms.N;
  let start = k * uniforms.chunk;
  let end = min(start + uniforms.chunk, uniforms.T);`;

/** Sizes of one level of a chunked scan. */
export interface LevelShape {
  readonly B: number;
  readonly T: number;
  readonly D: number;
  readonly chunk: number;
}

/** The uniform fields of a generic scan kernel at one level, plus the algebra's float uniforms. */
export function scanUniforms(alg: ScanAlgebra, level: LevelShape, floats: Readonly<Record<string, number>>): UniformField[] {
  const N = Math.ceil(level.T / level.chunk);
  return [
    { name: 'T', type: 'i32', value: level.T },
    { name: 'N', type: 'i32', value: N },
    { name: 'chunk', type: 'i32', value: level.chunk },
    { name: 'B', type: 'i32', value: level.B },
    { name: 'D', type: 'i32', value: level.D },
    { name: 'count', type: 'i32', value: level.B * N * level.D },
    ...alg.floatUniforms.map((name) => {
      const value = floats[name];
      if (value === undefined) throw new Error(`pelk webgpu: missing uniform ${name} for ${alg.name}`);
      return { name, type: 'f32' as const, value };
    }),
  ];
}
