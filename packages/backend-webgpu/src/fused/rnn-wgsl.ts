/**
 * WGSL of the fused GRU, LSTM and Elman kernels: the WGSL twin of core's host kernels
 * (`hostRnnKernel`, the reference they follow formula by formula), in float32.
 *
 * Layout of the work: a step is computed by a group of `LANES` invocations (`LANES` = H rounded up
 * to a power of two, at most 64), lane `l` owning the hidden units `l, l + LANES, …`; a workgroup
 * of 64 invocations holds `SLOTS = 64 / LANES` steps. The state entering each step sits in
 * workgroup memory, so the recurrent product reads it from there while the weights stream through
 * the cache (`W_hhᵀ`, so neighbouring lanes read neighbouring words). Dense Jacobians are written in
 * a second phase from per-unit coefficients in workgroup memory, lanes over the entries of the
 * `D×D` block, so the writes are contiguous.
 *
 * Modes:
 * - `diagonal` / `dense`: linearise steps `[t0, t1)` of every batch entry around `states`
 *   (entered from `init`): the defects `f(s_{t−1}) − s_t`, the Jacobians, and `max |d|` folded
 *   into `stats[0]` by an atomic maximum on the float's bits (NaN bits order above +∞, so a NaN
 *   defect makes the residual NaN).
 * - `apply`: `f(prev_t, u_t)` for steps `[t0, t1)`.
 * - `rollout`: one workgroup per batch entry walks steps `[t0, t1)` in order, the state kept in
 *   workgroup memory between steps (the GPU-resident sequential evaluation).
 */
import type { ProgramActivation, RnnProgram } from '@pelk/core';

/** What a kernel computes (see the module comment). */
export type RnnKernelMode = 'diagonal' | 'dense' | 'apply' | 'rollout';

/** Invocations per workgroup of every fused kernel. */
export const FUSED_WORKGROUP = 64;

/** The shape of a program's kernels. */
export interface RnnLayout {
  readonly H: number;
  /** Drive width (`3H`, `4H` or `H`). */
  readonly G: number;
  readonly D: number;
  /** Invocations per step. */
  readonly lanes: number;
  /** Steps per workgroup (1 in the rollout, whose workgroup is one batch entry). */
  readonly slots: number;
  /** Coefficient planes kept per unit in workgroup memory. */
  readonly planes: number;
  /** Whether the GRU's reset gate applies before the recurrent product (Keras `resetAfter: false`). */
  readonly resetBefore: boolean;
  /** Bytes of workgroup memory the largest kernel declares. */
  readonly workgroupBytes: number;
}

/** The kernels' layout for a program. */
export function rnnLayout(p: RnnProgram): RnnLayout {
  const H = p.hiddenSize;
  const G = { gru: 3, lstm: 4, elman: 1 }[p.kind] * H;
  const D = p.kind === 'lstm' ? 2 * H : H;
  let lanes = 1;
  while (lanes < H && lanes < FUSED_WORKGROUP) lanes *= 2;
  const slots = FUSED_WORKGROUP / lanes;
  const resetBefore = p.kind === 'gru' && p.resetAfter === false;
  const planes = p.kind === 'gru' ? (resetBefore ? 7 : 5) : p.kind === 'lstm' ? 6 : 1;
  // sh_prev, sh_next (rollout) and the coefficient planes, per slot; plus one atomic word.
  const workgroupBytes = 4 * (slots * (2 * D + planes * H) + 1);
  return { H, G, D, lanes, slots, planes, resetBefore, workgroupBytes };
}

/**
 * `magnitudeBits(x)`: |x| as ordered bits, every NaN mapped above +∞, so that an atomic maximum of
 * them is the maximum magnitude, or NaN when any is NaN (no float atomics needed).
 */
export const MAGNITUDE_BITS_WGSL = `
fn magnitudeBits(d : f32) -> u32 {
  let m = bitcast<u32>(d) & 0x7fffffffu;
  return select(m, 0x7fc00000u, m > 0x7f800000u);
}`;

/** `fn <name>(x) -> f32` and its derivative `fn d<name>(x, y) -> f32`, as in core's SCALAR_ACTIVATIONS. */
export function activationWgsl(name: string, a: ProgramActivation): string {
  const body: Record<ProgramActivation, [string, string]> = {
    // exp of −|x| never overflows: σ(x) = 1/(1+e^{−x}) for x ≥ 0, e^{x}/(1+e^{x}) below.
    sigmoid: ['let e = exp(-abs(x)); let s = 1.0 / (1.0 + e); return select(e * s, s, x >= 0.0);', 'return y * (1.0 - y);'],
    hardSigmoid: ['return clamp(0.2 * x + 0.5, 0.0, 1.0);', 'return select(0.0, 0.2, abs(x) < 2.5);'],
    // tanh(|x|) = (1 − e^{−2|x|}) / (1 + e^{−2|x|}): finite for every finite x.
    tanh: ['let e = exp(-2.0 * abs(x)); let t = (1.0 - e) / (1.0 + e); return select(-t, t, x >= 0.0);', 'return 1.0 - y * y;'],
    relu: ['return select(0.0, x, x > 0.0);', 'return select(0.0, 1.0, x > 0.0);'],
    linear: ['return x;', 'return 1.0;'],
  };
  const [value, derivative] = body[a];
  return `
fn ${name}(x : f32) -> f32 { ${value} }
fn d${name}(x : f32, y : f32) -> f32 { ${derivative} }`;
}

/**
 * The binding list of a mode (after the uniform at binding 0), and its WGSL declarations. The
 * weights share one buffer (`WTS` = `W_hhᵀ`, `W_hh`, the GRU's auxiliary words), which keeps the
 * linearisation within the default eight storage buffers per stage.
 */
export function rnnBindings(mode: RnnKernelMode): { names: string[]; code: string } {
  const lin = mode === 'diagonal' || mode === 'dense';
  // name, writable, element type
  const list: [string, boolean, string][] = [
    ['WTS', false, 'f32'],
    ['X', false, 'f32'],
    ...(mode === 'rollout' ? [] : ([['S', false, 'f32']] as [string, boolean, string][])),
    ...(mode === 'apply' ? [] : ([['S0', false, 'f32']] as [string, boolean, string][])),
    ['OUT', true, 'f32'],
    ...(lin ? ([['JAC', true, 'f32'], ['STATS', true, 'atomic<u32>']] as [string, boolean, string][]) : []),
  ];
  const code = [
    '@group(0) @binding(0) var<uniform> P : Params;',
    ...list.map(([name, rw, type], i) => `@group(0) @binding(${i + 1}) var<storage, ${rw ? 'read_write' : 'read'}> ${name} : array<${type}>;`),
  ].join('\n');
  return { names: list.map(([n]) => n), code };
}

/**
 * Per-unit code: reads the entering state from `sh_prev[pb + k]` and the drive from `X[xb + g]`,
 * calls `emit(slot, row, idx, value, diagonal)` for each state component it produces, and (dense,
 * or with `coefficients`) stores its Jacobian coefficients in the planes `sh_c[cb + c·H + u]` (the
 * diagonal it emits is exact unless `dense`, where the dense phase writes the Jacobian instead). GRU with the reset gate before
 * the product has a first phase (`unitA`), separated from `unitB` by a barrier.
 */
export function unitCode(p: RnnProgram, L: RnnLayout, dense: boolean, lin: boolean, coefficients = dense): { unitA?: string; unitB: string; entry: string } {
  const { H, G } = L;
  const coef = (c: number, v: string) => (coefficients ? `sh_c[cb + ${c * H}u + u] = ${v};` : '');
  const matvec = (gates: number[], src: string) => `
    ${gates.map((g) => `var acc${g} = 0.0;`).join(' ')}
    for (var k = 0u; k < ${H}u; k++) {
      let hk = ${src};
      let wk = k * ${G}u + u;
      ${gates.map((g) => `acc${g} += wt(wk + ${g * H}u) * hk;`).join(' ')}
    }`;
  const diagW = (gate: number) => `w((${gate * H}u + u) * ${H}u + u)`;
  if (p.kind === 'elman') {
    return {
      unitB: `${matvec([0], 'sh_prev[pb + k]')}
    let a = X[xb + u] + acc0;
    let y = act(a);
    ${lin ? `let d = dact(a, y); ${coef(0, 'd')} emit(slot, row, u, y, d * ${diagW(0)});` : 'emit(slot, row, u, y, 0.0);'}`,
      entry: 'sh_c[cb + i] * w(i * H + j)',
    };
  }
  if (p.kind === 'lstm') {
    return {
      unitB: `${matvec([0, 1, 2, 3], 'sh_prev[pb + k]')}
    let aI = X[xb + u] + acc0;
    let aF = X[xb + ${H}u + u] + acc1;
    let aG = X[xb + ${2 * H}u + u] + acc2;
    let aO = X[xb + ${3 * H}u + u] + acc3;
    let gi = ract(aI);
    let gf = ract(aF);
    let gg = act(aG);
    let go = ract(aO);
    let c = sh_prev[pb + ${H}u + u];
    let c2 = gf * c + gi * gg;
    let tc = act(c2);
    ${
      lin
        ? `let ci = gg * dract(aI, gi);
    let cf = c * dract(aF, gf);
    let cg = gi * dact(aG, gg);
    let co = tc * dract(aO, go);
    let uu = go * dact(c2, tc);
    ${coef(0, 'ci')} ${coef(1, 'cf')} ${coef(2, 'cg')} ${coef(3, 'co')} ${coef(4, 'uu')} ${coef(5, 'gf')}
    emit(slot, row, u, go * tc, uu * (ci * ${diagW(0)} + cf * ${diagW(1)} + cg * ${diagW(2)}) + co * ${diagW(3)});
    emit(slot, row, ${H}u + u, c2, gf);`
        : `emit(slot, row, u, go * tc, 0.0);
    emit(slot, row, ${H}u + u, c2, 0.0);`
    }`,
      // Rows k (h') and H + k (c') over columns j (h) and H + j (c).
      entry: `lstmEntry(cb, i, j)`,
    };
  }
  if (!L.resetBefore) {
    return {
      unitB: `${matvec([0, 1, 2], 'sh_prev[pb + k]')}
    let aR = X[xb + u] + acc0;
    let aZ = X[xb + ${H}u + u] + acc1;
    let r = ract(aR);
    let z = ract(aZ);
    let hN = acc2 + aux(u);
    let aN = X[xb + ${2 * H}u + u] + r * hN;
    let n = act(aN);
    let h = sh_prev[pb + u];
    ${
      lin
        ? `let gN = (1.0 - z) * dact(aN, n);
    let cN = gN * r;
    let cR = gN * hN * dract(aR, r);
    let cZ = (h - n) * dract(aZ, z);
    ${coef(0, 'cN')} ${coef(1, 'cR')} ${coef(2, 'cZ')} ${coef(3, 'z')} ${coef(4, 'gN')}
    emit(slot, row, u, n + z * (h - n), cN * ${diagW(2)} + cR * ${diagW(0)} + cZ * ${diagW(1)} + z);`
        : 'emit(slot, row, u, n + z * (h - n), 0.0);'
    }`,
      entry: `sh_c[cb + i] * w((${2 * H}u + i) * H + j) + sh_c[cb + H + i] * w(i * H + j) + sh_c[cb + ${2 * H}u + i] * w((H + i) * H + j) + select(0.0, sh_c[cb + ${3 * H}u + i], i == j)`,
    };
  }
  // GRU, reset gate before the product: planes 0 r, 1 z, 2 q = h·ra'(aR), 3 r⊙h, 4 aZ, 5 gN, 6 cZ.
  return {
    unitA: `${matvec([0, 1], 'sh_prev[pb + k]')}
    let aR = X[xb + u] + acc0;
    let aZ = X[xb + ${H}u + u] + acc1;
    let r = ract(aR);
    let h = sh_prev[pb + u];
    sh_c[cb + u] = r;
    sh_c[cb + ${H}u + u] = ract(aZ);
    sh_c[cb + ${2 * H}u + u] = h * dract(aR, r);
    sh_c[cb + ${3 * H}u + u] = r * h;
    sh_c[cb + ${4 * H}u + u] = aZ;`,
    unitB: `${matvec([2], `sh_c[cb + ${3 * H}u + k]`)}
    let aN = X[xb + ${2 * H}u + u] + acc2;
    let n = act(aN);
    let z = sh_c[cb + ${H}u + u];
    let h = sh_prev[pb + u];
    ${
      lin
        ? `let gN = (1.0 - z) * dact(aN, n);
    let cZ = (h - n) * dract(sh_c[cb + ${4 * H}u + u], z);
    ${coef(5, 'gN')} ${coef(6, 'cZ')}
    var eq = 0.0;
    ${dense ? '' : `for (var k = 0u; k < ${H}u; k++) { eq += aux(${H}u + k * ${H}u + u) * sh_c[cb + ${2 * H}u + k]; }`}
    emit(slot, row, u, n + z * (h - n), z + cZ * ${diagW(1)} + gN * (${diagW(2)} * sh_c[cb + u] + eq));`
        : 'emit(slot, row, u, n + z * (h - n), 0.0);'
    }`,
    entry: 'gruBeforeEntry(cb, i, j)',
  };
}

/** Dense-entry helpers (functions of the coefficient planes) that some kinds need. */
export function entryHelpers(p: RnnProgram, L: RnnLayout): string {
  const { H } = L;
  if (p.kind === 'lstm') {
    return `
fn lstmEntry(cb : u32, i : u32, j : u32) -> f32 {
  let k = i % ${H}u;
  if (j >= ${H}u) {
    let diag = select(0.0, sh_c[cb + ${5 * H}u + k], j - ${H}u == k);
    return select(diag, diag * sh_c[cb + ${4 * H}u + k], i < ${H}u);
  }
  let dc = sh_c[cb + k] * w(k * ${H}u + j) + sh_c[cb + ${H}u + k] * w((${H}u + k) * ${H}u + j) + sh_c[cb + ${2 * H}u + k] * w((${2 * H}u + k) * ${H}u + j);
  return select(dc, sh_c[cb + ${4 * H}u + k] * dc + sh_c[cb + ${3 * H}u + k] * w((${3 * H}u + k) * ${H}u + j), i < ${H}u);
}`;
  }
  if (p.kind === 'gru' && L.resetBefore) {
    return `
fn gruBeforeEntry(cb : u32, i : u32, j : u32) -> f32 {
  // W_hn diag(q) W_hr, entry (i, j).
  var pq = 0.0;
  for (var k = 0u; k < ${H}u; k++) { pq += w((${2 * H}u + i) * ${H}u + k) * sh_c[cb + ${2 * H}u + k] * w(k * ${H}u + j); }
  let z = select(0.0, sh_c[cb + ${H}u + i], i == j);
  return sh_c[cb + ${5 * H}u + i] * (w((${2 * H}u + i) * ${H}u + j) * sh_c[cb + j] + pq) + sh_c[cb + ${6 * H}u + i] * w((${H}u + i) * ${H}u + j) + z;
}`;
  }
  return '';
}

/**
 * `fn emit(slot, row, idx, v, jd)`: what a kernel does with state component `idx` of the value `v`
 * (and the Jacobian's diagonal entry `jd`) of step `row`: the defect, diagonal and residual of a
 * linearisation (dense blocks are written after a barrier), the value of a sweep, or the next
 * state of a rollout (kept in workgroup memory).
 */
export function emitWgsl(D: number, mode: RnnKernelMode): string {
  const body: Record<RnnKernelMode, string> = {
    diagonal: `let d = v - S[row * ${D}u + idx];
  OUT[row * ${D}u + idx] = d;
  JAC[row * ${D}u + idx] = jd;
  resid = max(resid, magnitudeBits(d));`,
    dense: `let d = v - S[row * ${D}u + idx];
  OUT[row * ${D}u + idx] = d;
  resid = max(resid, magnitudeBits(d));`,
    apply: `OUT[row * ${D}u + idx] = v;`,
    rollout: 'sh_next[idx] = v;',
  };
  return `
fn emit(slot : u32, row : u32, idx : u32, v : f32, jd : f32) {
  ${body[mode]}
}`;
}

/** The `main` of a kernel: the step layout of its mode around a per-step `body`. */
export interface MainSpec {
  readonly mode: RnnKernelMode;
  readonly D: number;
  /** Width of a drive row (`xb = row · driveWidth`). */
  readonly driveWidth: number;
  readonly lanes: number;
  readonly slots: number;
  /** More `let`s after `pb` (slot offsets of the kernel's workgroup arrays; `slot` is 0 in a rollout). */
  readonly lets: string;
  /** One step, from `sh_prev` to `emit` calls: `guard` wraps each phase's work (`if (live)`), barriers between. */
  body(guard: string): string;
  /** After the step in the parallel modes (dense blocks, the Jacobian's other parts). */
  readonly tail?: string;
}

/**
 * Parallel modes: `SLOTS` steps per workgroup of {@link FUSED_WORKGROUP}, the entering states
 * loaded into `sh_prev`, the body, the tail, and the linearisations' residual folded into `STATS[0]`
 * (workgroup maximum first). Rollout: one workgroup of `lanes` per batch entry walks `[t0, t1)`.
 */
export function mainWgsl(m: MainSpec): string {
  const { D, lanes, slots } = m;
  if (m.mode === 'rollout') {
    return `
@compute @workgroup_size(${lanes})
fn main(@builtin(local_invocation_index) lane : u32, @builtin(workgroup_id) wid : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>) {
  let b = wid.x + wid.y * nwg.x;
  if (b >= P.B) { return; }
  let slot = 0u;
  let pb = 0u;
  ${m.lets}
  for (var k = lane; k < ${D}u; k += ${lanes}u) {
    if (P.t0 == 0u) { sh_prev[k] = S0[b * ${D}u + k]; } else { sh_prev[k] = OUT[(b * P.T + P.t0 - 1u) * ${D}u + k]; }
  }
  workgroupBarrier();
  for (var t = P.t0; t < P.t1; t++) {
    let row = b * P.T + t;
    let xb = row * ${m.driveWidth}u;
    ${m.body('if (true)')}
    workgroupBarrier();
    for (var k = lane; k < ${D}u; k += ${lanes}u) {
      sh_prev[k] = sh_next[k];
      OUT[row * ${D}u + k] = sh_next[k];
    }
    workgroupBarrier();
  }
}`;
  }
  const lin = m.mode !== 'apply';
  const load =
    m.mode === 'apply'
      ? `sh_prev[pb + k] = S[row * ${D}u + k];`
      : `if (t == 0u) { sh_prev[pb + k] = S0[b * ${D}u + k]; } else { sh_prev[pb + k] = S[(row - 1u) * ${D}u + k]; }`;
  const residual = lin
    ? `
  atomicMax(&sh_max, resid);
  workgroupBarrier();
  if (local == 0u) { atomicMax(&STATS[0], atomicLoad(&sh_max)); }`
    : '';
  return `
@compute @workgroup_size(${FUSED_WORKGROUP})
fn main(@builtin(local_invocation_index) local : u32, @builtin(workgroup_id) wid : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>) {
  let slot = local / ${lanes}u;
  let lane = local % ${lanes}u;
  let width = P.t1 - P.t0;
  let count = P.B * width;
  let rid = (wid.x + wid.y * nwg.x) * ${slots}u + slot;
  let live = rid < count;
  let b = select(0u, rid / width, live);
  let t = P.t0 + select(0u, rid % width, live);
  let row = b * P.T + t;
  let xb = row * ${m.driveWidth}u;
  let pb = slot * ${D}u;
  ${m.lets}
  if (live) {
    for (var k = lane; k < ${D}u; k += ${lanes}u) { ${load} }
  }
  workgroupBarrier();
  ${m.body('if (live)')}${m.tail ?? ''}${residual}
}`;
}

/**
 * The uniforms, the bindings of a mode, `H`, and the accessors of the packed weights: `W_hhᵀ`
 * `[H, G]`, `W_hh` `[G, H]` and the auxiliary words, in `WTS`.
 */
export function kernelPreamble(mode: RnnKernelMode, H: number, G: number): string {
  return `
struct Params { B : u32, T : u32, t0 : u32, t1 : u32 }
${rnnBindings(mode).code}
const H = ${H}u;
fn wt(i : u32) -> f32 { return WTS[i]; }
fn w(i : u32) -> f32 { return WTS[${G * H}u + i]; }
fn aux(i : u32) -> f32 { return WTS[${2 * G * H}u + i]; }`;
}

/** Workgroup declarations every kernel has: `sh_prev`, the rollout's `sh_next`, the residual's words. */
export function sharedStateWgsl(D: number, slots: number, mode: RnnKernelMode): string {
  return [
    `var<workgroup> sh_prev : array<f32, ${slots * D}>;`,
    mode === 'rollout' ? `var<workgroup> sh_next : array<f32, ${D}>;` : '',
    mode === 'dense' || mode === 'diagonal' ? 'var<workgroup> sh_max : atomic<u32>;\nvar<private> resid : u32 = 0u;' : '',
  ].join('\n');
}

/** The WGSL of one mode of a program's kernels. */
export function rnnKernelWgsl(p: RnnProgram, L: RnnLayout, mode: RnnKernelMode): string {
  const { H, G, D, lanes } = L;
  const slots = mode === 'rollout' ? 1 : L.slots;
  const dense = mode === 'dense';
  const lin = dense || mode === 'diagonal';
  const unit = unitCode(p, L, dense, lin);
  const units = (code: string) => `for (var u = lane; u < ${H}u; u += ${lanes}u) {${code}
  }`;
  const header = `${kernelPreamble(mode, H, G)}
${sharedStateWgsl(D, slots, mode)}
var<workgroup> sh_c : array<f32, ${slots * L.planes * H}>;
${activationWgsl('act', p.activation)}
${activationWgsl('ract', p.recurrentActivation ?? 'sigmoid')}
${MAGNITUDE_BITS_WGSL}
${dense ? entryHelpers(p, L) : ''}
${emitWgsl(D, mode)}`;
  const body = (guard: string) =>
    unit.unitA ? `${guard} {\n  ${units(unit.unitA)}\n  }\n  workgroupBarrier();\n  ${guard} {\n  ${units(unit.unitB)}\n  }` : `${guard} {\n  ${units(unit.unitB)}\n  }`;
  const tail = dense
    ? `
  workgroupBarrier();
  if (live) {
    for (var e = lane; e < ${D * D}u; e += ${lanes}u) {
      let i = e / ${D}u;
      let j = e % ${D}u;
      JAC[row * ${D * D}u + e] = ${unit.entry};
    }
  }`
    : '';
  return `${header}
${mainWgsl({ mode, D, driveWidth: G, lanes, slots, lets: `let cb = slot * ${L.planes * H}u;`, body, tail })}`;
}
