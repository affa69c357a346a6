/**
 * Pass 1 of the dense reduce-then-scan: one group of invocations per (batch, chunk) composes the
 * chunk's affine maps, `P ← [A_u | b_u] · P` for u through the chunk, starting from the identity,
 * where `P` is the `D × (D+1)` augmented product. Each invocation owns `EPI` entries `(i, j)` of
 * `P` and computes them as row `i` of the step's matrix times column `j` of `P` (D multiply-adds
 * per entry, so a step costs D²(D+1) spread over the group instead of one thread).
 *
 * Two memory variants, same arithmetic:
 * - `workgroup`: `P` and the staged step matrix live in workgroup memory (2·G·D(D+1) floats);
 *   the step matrix is loaded cooperatively (coalesced), two workgroup barriers per step;
 * - `global`: for D too large for workgroup memory, `P` lives in the output slot itself and the
 *   step matrix is read from the input directly; storage barriers order the group's accesses.
 * Barriers sit in uniform control flow: every invocation runs `uniforms.chunk` iterations and
 * idles on those past its chunk's end.
 * Output `[B, N, D, D+1]`: the aggregate `[A | b]` of chunk k of batch b at `(b·N + k)`.
 */
import { groupCoordsWgsl, stepReadersWgsl } from './dense-common.wgsl.js';

/** Compile-time shape of a dense reduce kernel. */
export interface DenseReduceLayout {
  readonly D: number;
  /** Invocations per (batch, chunk) group. */
  readonly ipg: number;
  /** Groups per workgroup. */
  readonly groupsPerWorkgroup: number;
  /** Entries of P per invocation, ⌈D(D+1)/ipg⌉. */
  readonly epi: number;
  readonly workgroupMemory: boolean;
}

/** User code of the dense chunk-reduce kernel. */
export function denseReduceWgsl(layout: DenseReduceLayout, raw: boolean, reverse: boolean): string {
  const { D, ipg, groupsPerWorkgroup: G, epi, workgroupMemory } = layout;
  const AUG = D + 1;
  const ENT = D * AUG;
  const forEntries = (body: string) => `
    for (var r = 0; r < ${epi}; r = r + 1) {
      let e = lane + r * ${ipg};
      if (e < ${ENT}) {
        ${body}
      }
    }`;
  const head = `
${stepReadersWgsl(D, raw, reverse)}
${workgroupMemory ? `var<workgroup> Pm : array<f32, ${G * ENT}>;\nvar<workgroup> At : array<f32, ${G * ENT}>;` : ''}

fn main(index : i32) {
${groupCoordsWgsl(ipg, G)}
  var nv : array<f32, ${epi}>;`;

  if (workgroupMemory) {
    return /* wgsl */ `${head}
  let base = g * ${ENT};
  ${forEntries(`let i = e / ${AUG}; Pm[base + e] = select(0.0, 1.0, e == i * ${AUG + 1});`)}
  for (var s = 0; s < uniforms.chunk; s = s + 1) {
    let live = s < len;
    if (live) {
      ${forEntries('At[base + e] = augEntry(b, start + s, e);')}
    }
    workgroupBarrier();
    if (live) {
      ${forEntries(`
        let i = e / ${AUG};
        let j = e - i * ${AUG};
        let row = base + i * ${AUG};
        var acc = select(0.0, At[row + ${D}], j == ${D});
        for (var l = 0; l < ${D}; l = l + 1) {
          acc = fma(At[row + l], Pm[base + l * ${AUG} + j], acc);
        }
        nv[r] = acc;`)}
    }
    workgroupBarrier();
    if (live) {
      ${forEntries('Pm[base + e] = nv[r];')}
    }
  }
  if (valid) {
    ${forEntries(`result[gid * ${ENT} + e] = Pm[base + e];`)}
  }
}
`;
  }
  return /* wgsl */ `${head}
  let out = gid * ${ENT};
  if (valid) {
    ${forEntries(`let i = e / ${AUG}; result[out + e] = select(0.0, 1.0, e == i * ${AUG + 1});`)}
  }
  storageBarrier();
  for (var s = 0; s < uniforms.chunk; s = s + 1) {
    let live = s < len;
    if (live) {
      let u = start + s;
      ${forEntries(`
        let i = e / ${AUG};
        let j = e - i * ${AUG};
        var acc = select(0.0, stepB(b, u, i), j == ${D});
        for (var l = 0; l < ${D}; l = l + 1) {
          acc = fma(stepA(b, u, i, l), result[out + l * ${AUG} + j], acc);
        }
        nv[r] = acc;`)}
    }
    storageBarrier();
    if (live) {
      ${forEntries('result[out + e] = nv[r];')}
    }
    storageBarrier();
  }
}
`;
}
