/**
 * Pass 3 of the dense reduce-then-scan (and, with one chunk, the sequential scan of the top
 * level): one group of invocations per (batch, chunk) replays the chunk from its entering state —
 * `xInit` for chunk 0, else `carry[b, k−1]`, the state after chunk k−1 solved one level up —
 * with `s ← A_u s + b_u`. Each invocation owns `RPI` rows; the state is shared through workgroup
 * memory (G·D floats), two workgroup barriers per step (uniform control flow as in the reduce).
 * Inputs: `xA`, `xB` (level 0) or `elems` `[B, T_L, D, D+1]`; `xInit` `[B, D]`; optional
 * `carry` `[B, N, D]`. Output `[B, T_L, D]`: states in scan order (levels ≥ 1) or at actual time
 * (level 0; reverse maps step u to t = T−1−u).
 */
import { groupCoordsWgsl, stepReadersWgsl } from './dense-common.wgsl.js';

/** Compile-time shape of a dense rescan kernel. */
export interface DenseRescanLayout {
  readonly D: number;
  /** Invocations per (batch, chunk) group. */
  readonly ipg: number;
  /** Groups per workgroup. */
  readonly groupsPerWorkgroup: number;
  /** Rows per invocation, ⌈D/ipg⌉. */
  readonly rpi: number;
}

/** User code of the dense chunk-rescan kernel. */
export function denseRescanWgsl(layout: DenseRescanLayout, raw: boolean, reverse: boolean, hasCarry: boolean): string {
  const { D, ipg, groupsPerWorkgroup: G, rpi } = layout;
  const forRows = (body: string) => `
    for (var r = 0; r < ${rpi}; r = r + 1) {
      let i = lane + r * ${ipg};
      if (i < ${D}) {
        ${body}
      }
    }`;
  const seed = hasCarry
    ? `if (k == 0) { sv[base + i] = xInit[b * ${D} + i]; } else { sv[base + i] = carry[(gid - 1) * ${D} + i]; }`
    : `sv[base + i] = xInit[b * ${D} + i];`;
  const t = raw && reverse ? 'uniforms.T - 1 - u' : 'u';
  return /* wgsl */ `
${stepReadersWgsl(D, raw, reverse)}
var<workgroup> sv : array<f32, ${G * D}>;

fn main(index : i32) {
${groupCoordsWgsl(ipg, G)}
  let base = g * ${D};
  if (valid) {
    ${forRows(seed)}
  }
  var nv : array<f32, ${rpi}>;
  for (var s = 0; s < uniforms.chunk; s = s + 1) {
    let live = s < len;
    workgroupBarrier();
    if (live) {
      let u = start + s;
      let o = (b * uniforms.T + ${t}) * ${D};
      ${forRows(`
        var acc = stepB(b, u, i);
        for (var l = 0; l < ${D}; l = l + 1) {
          acc = fma(stepA(b, u, i, l), sv[base + l], acc);
        }
        nv[r] = acc;
        result[o + i] = acc;`)}
    }
    workgroupBarrier();
    if (live) {
      ${forRows('sv[base + i] = nv[r];')}
    }
  }
}
`;
}
