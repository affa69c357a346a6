/**
 * The WGSL of the chunked-scan kernels (reduce and rescan, any `ScanAlgebra`), in two memory
 * layouts: `direct` (each invocation walks global memory) and `staged` (coalesced whatever `D` is).
 *
 * One invocation owns one (batch, chunk, channel) and walks its chunk's steps in order. In the
 * direct layout, workgroups of 64 take the invocations in order, channel fastest; neighbouring invocations of a small `D` would touch different chunks at every step —
 * addresses `chunk·D` floats apart, one memory transaction per invocation. Instead a workgroup
 * owns `G` whole chunk groups of `W` channels (`G·W ≤ 64` invocations) and moves through its
 * chunks in sub-tiles of `S` steps:
 *
 * 1. stage: the workgroup's lanes walk the sub-tile's items `(group, step, channel)` with the
 *    channel fastest, so consecutive lanes read consecutive addresses (`S·W` contiguous floats per
 *    group when `W = D`), build each element with the algebra's `loadElem`, and store it in
 *    workgroup memory, component planes with one float of padding per group (no bank conflicts);
 * 2. compute: each invocation folds (reduce) or applies (rescan) its `S` elements from workgroup
 *    memory; the rescan parks its states in a second tile;
 * 3. store (rescan): the lanes write the parked states back with the staging order, so writes
 *    coalesce as reads did.
 *
 * Staging costs two or three workgroup barriers per sub-tile; on a CPU emulation such as
 * SwiftShader those dominate (the staged diagonal scan measured ~10× slower there than the direct
 * one), and once D ≥ 32 a direct walk is coalesced anyway — hence `ScanLayout`.
 *
 * A level-0 rescan writes every state component (one output binding each) in the same pass.
 *
 * Levels: level 0 reads raw elements through the algebra's `rawElem` at actual time
 * `t = reverse ? T−1−u : u` for scan step `u`; every higher level reads the chunk aggregates of
 * the level below from `elems`, component planes `[elementSize, B, T_L, D]` in scan order.
 * Uniforms: `T` steps at this level, `N` chunks, `chunk` steps per chunk, `B`, `D`,
 * `count = B·N·D` (aggregates per component plane), `groups = B·N·⌈D/W⌉`, then the algebra's
 * float uniforms.
 */
import type { ScanAlgebra } from './scan-algebra.js';

/** The most invocations of one workgroup. */
const MAX_LANES = 64;
/** The longest sub-tile: 8 steps of one channel already fill a 32-byte memory sector. */
const MAX_SUBTILE = 8;

/** How the workgroups of a chunked scan tile their (batch, chunk, channel) invocations. */
export interface TileLayout {
  /** Channels per chunk group (all of D when D ≤ 64, else D split into equal blocks). */
  readonly W: number;
  /** Channel blocks per (batch, chunk): ⌈D / W⌉. */
  readonly blocks: number;
  /** Chunk groups per workgroup. */
  readonly G: number;
  /** Invocations per workgroup, `G·W`. */
  readonly lanes: number;
  /** Stage elements and states through workgroup memory (else each invocation reads and writes global memory directly). */
  readonly staged: boolean;
  /** Steps per sub-tile (staged only). */
  readonly S: number;
}

/**
 * Which memory layout the diagonal and Kalman scans use. `'staged'` coalesces reads and writes
 * through workgroup memory; `'direct'` lets each invocation walk global memory (coalesced on its
 * own once D ≥ 32, and far cheaper on CPU adapters, where workgroup barriers are expensive and
 * coalescing means nothing). `'auto'` (the default): staged for D < 32 on a GPU, direct otherwise.
 */
export type ScanLayout = 'auto' | 'staged' | 'direct';

/** Below this many channels, a warp of a direct scan straddles chunks (`auto` stages). */
const STAGE_BELOW_D = 32;

/** Resolves `'auto'` for `D` channels on an adapter that is (`cpuAdapter`) or is not a CPU emulation. */
export function stagedScan(choice: ScanLayout, D: number, cpuAdapter: boolean): boolean {
  if (choice !== 'auto' && choice !== 'staged' && choice !== 'direct') {
    throw new RangeError(`pelk webgpu: scanLayout must be 'auto', 'staged' or 'direct', got ${JSON.stringify(choice)}`);
  }
  if (choice !== 'auto') return choice === 'staged';
  return !cpuAdapter && D < STAGE_BELOW_D;
}

/**
 * The tile layout for `D` channels; staged, sized so that the element and state tiles fit in
 * `workgroupBytes` (the adapter's `maxComputeWorkgroupStorageSize`).
 */
export function tileLayout(alg: ScanAlgebra, D: number, workgroupBytes: number, staged = true): TileLayout {
  const blocks = Math.ceil(D / MAX_LANES);
  const W = Math.ceil(D / blocks);
  const G = Math.max(1, Math.floor(MAX_LANES / W));
  // Direct: flat workgroups of 64 over (batch, chunk, channel); no groups, no tiles.
  if (!staged) return { W: D, blocks: 1, G: 1, lanes: MAX_LANES, staged, S: 1 };
  const floatsPerStep = alg.elementSize + alg.stateSize;
  let S = MAX_SUBTILE;
  while (S > 1 && 4 * floatsPerStep * G * (S * W + 1) > workgroupBytes) S /= 2;
  if (4 * floatsPerStep * G * (S * W + 1) > workgroupBytes) {
    throw new RangeError(`pelk webgpu: the ${alg.name} scan needs more workgroup memory than this adapter's ${workgroupBytes} bytes`);
  }
  return { W, blocks, G, lanes: G * W, staged, S };
}

/** Which kernel of a chunked scan. */
export interface ScanKernelKind {
  readonly pass: 'reduce' | 'rescan';
  /** Level 0 (raw elements at actual time) rather than packed aggregates. */
  readonly raw: boolean;
  readonly reverse: boolean;
  /** Rescan: chunks after the first start from `carry` rather than the seed. */
  readonly carry: boolean;
  /** Rescan: every component at actual time, one binding each (level 0), or packed planes. */
  readonly output: 'components' | 'packed';
}

/** The names, in binding order after the uniforms, of a kernel's inputs and outputs. */
export function scanBindings(alg: ScanAlgebra, kind: ScanKernelKind): { reads: string[]; writes: string[] } {
  const reads = [...(kind.raw ? alg.rawInputs : ['elems'])];
  if (kind.pass === 'reduce') return { reads, writes: ['agg'] };
  reads.push(...alg.seedInputs, ...(kind.carry ? ['carry'] : []));
  const writes = kind.output === 'packed' ? ['states'] : Array.from({ length: alg.stateSize }, (_, c) => `out${c}`);
  return { reads, writes };
}

/** The uniform words of one level (integers, then the algebra's floats by bit pattern, padded to 16 bytes). */
export function scanUniformWords(
  alg: ScanAlgebra,
  level: { B: number; T: number; D: number; chunk: number },
  layout: TileLayout,
  floats: Readonly<Record<string, number>>,
): Uint32Array {
  const N = Math.ceil(level.T / level.chunk);
  const ints = [level.T, N, level.chunk, level.B, level.D, level.B * N * level.D, level.B * N * layout.blocks];
  const words = new Uint32Array(4 * Math.ceil((ints.length + alg.floatUniforms.length) / 4));
  words.set(ints);
  const asFloat = new Float32Array(words.buffer);
  alg.floatUniforms.forEach((name, i) => {
    const value = floats[name];
    if (value === undefined) throw new Error(`pelk webgpu: missing uniform ${name} for ${alg.name}`);
    asFloat[ints.length + i] = value;
  });
  return words;
}

function uniformStruct(alg: ScanAlgebra): string {
  const fields = ['T', 'N', 'chunk', 'B', 'D', 'count', 'groups'].map((n) => `${n} : i32`);
  fields.push(...alg.floatUniforms.map((n) => `${n} : f32`));
  const padded = 4 * Math.ceil(fields.length / 4);
  for (let i = fields.length; i < padded; i++) fields.push(`pad${i} : i32`);
  return `struct Uniforms { ${fields.join(', ')} }`;
}

/** `fn loadElem(b, u, d) -> Elem`: the element at scan step `u` of this level. */
function loadElemWgsl(alg: ScanAlgebra, raw: boolean, reverse: boolean): string {
  if (raw) {
    return `
fn loadElem(b : i32, u : i32, d : i32) -> Elem {
  return rawElem(b, ${reverse ? 'uniforms.T - 1 - u' : 'u'}, d);
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

/**
 * A loop over this lane's items of the sub-tile at `base` (exactly `S`: item `lane + j·LANES`,
 * channel fastest); `body` sees `item`, `u` and `slot`. Their coordinates are the same in every
 * sub-tile, so `main` computes them once (`items`, `itemStep`, `itemSlot`).
 */
function eachItem(body: string): string {
  return `for (var j = 0; j < S; j++) {
      let item = items[j];
      let u = item.start + base + itemStep[j];
      let slot = itemSlot[j];
      if (item.live && u < item.end) {
        ${body}
      }
    }`;
}

/** The WGSL of one chunked-scan kernel (see the module comment). */
export function scanKernelWgsl(alg: ScanAlgebra, kind: ScanKernelKind, layout: TileLayout): string {
  const { W, G, S, blocks, lanes, staged } = layout;
  const E = alg.elementSize;
  const SS = alg.stateSize;
  const rescan = kind.pass === 'rescan';
  const { reads, writes } = scanBindings(alg, kind);
  const bindings = [
    '@group(0) @binding(0) var<uniform> uniforms : Uniforms;',
    ...reads.map((n, i) => `@group(0) @binding(${i + 1}) var<storage, read> ${n} : array<f32>;`),
    ...writes.map((n, i) => `@group(0) @binding(${reads.length + i + 1}) var<storage, read_write> ${n} : array<f32>;`),
  ];
  const range = (n: number) => Array.from({ length: n }, (_, c) => c);
  const list = (n: number, f: (c: number) => string, sep = ' ') => range(n).map(f).join(sep);

  // What one step does with its element `e` (reduce: fold; rescan: apply, then `keep` the state).
  const fold = 'if (u == me.start) { acc = e; } else { acc = combineElem(acc, e); }';
  /** Writes the state components `value(c)` of chunk `who` at scan step `u` to the outputs. */
  const writeState = (who: string, value: (c: number) => string) =>
    kind.output === 'packed'
      ? `let o = (${who}.b * uniforms.T + u) * uniforms.D + ${who}.d;
        let plane = uniforms.B * uniforms.T * uniforms.D;
        ${list(SS, (c) => `states[${c} * plane + o] = ${value(c)};`)}`
      : `let o = (${who}.b * uniforms.T + ${kind.reverse ? 'uniforms.T - 1 - u' : 'u'}) * uniforms.D + ${who}.d;
        ${list(SS, (c) => `out${c}[o] = ${value(c)};`)}`;

  let start: string;
  let finish = '';
  if (!rescan) {
    start = '  var acc : Elem;';
    finish = `  if (me.live) {
    let o = (me.b * uniforms.N + me.k) * uniforms.D + me.d;
    ${list(E, (c) => `agg[${c} * uniforms.count + o] = acc[${c}];`, '\n    ')}
  }`;
  } else {
    start = kind.carry
      ? `  var st : State;
  if (me.live) {
    if (me.k == 0) {
      st = seedState(me.b, me.d);
    } else {
      let j = (me.b * uniforms.N + me.k - 1) * uniforms.D + me.d;  // same (b, d), chunk k − 1
      st = State(${list(SS, (c) => `carry[${c} * uniforms.count + j]`, ', ')});
    }
  }`
      : `  var st : State;
  if (me.live) { st = seedState(me.b, me.d); }`;
  }

  let body: string;
  let tiles = '';
  if (!staged) {
    body = `  if (me.live) {
    for (var u = me.start; u < me.end; u++) {
      let e = loadElem(me.b, u, me.d);
      ${rescan ? `st = applyElem(st, e);\n      ${writeState('me', (c) => `st[${c}]`)}` : fold}
    }
  }`;
  } else {
    const TILE = G * (S * W + 1);
    tiles = `const S = ${S};
const STRIDE = ${S * W + 1};
const TILE = ${TILE};
var<workgroup> tileE : array<f32, ${E * TILE}>;
${rescan ? `var<workgroup> tileS : array<f32, ${SS * TILE}>;` : ''}`;
    const fromTile = `Elem(${list(E, (c) => `tileE[${c} * TILE + slot]`, ', ')})`;
    const step = rescan ? `st = applyElem(st, ${fromTile});\n          ${list(SS, (c) => `tileS[${c} * TILE + slot] = st[${c}];`)}` : `let e = ${fromTile};\n          ${fold}`;
    const store = rescan ? `\n    workgroupBarrier();\n    ${eachItem(writeState('item', (c) => `tileS[${c} * TILE + slot]`))}` : '';
    body = `  var items : array<Chunk, S>;
  var itemStep : array<i32, S>;
  var itemSlot : array<i32, S>;
  for (var j = 0; j < S; j++) {
    let m = lane + j * LANES;
    let mw = m % W;
    let ms = (m / W) % S;
    let mg = m / (S * W);
    items[j] = chunkOf(first + mg, mw);
    itemStep[j] = ms;
    itemSlot[j] = mg * STRIDE + ms * W + mw;
  }
  for (var base = 0; base < uniforms.chunk; base += S) {
    ${eachItem(`let e = loadElem(item.b, u, item.d);\n        ${list(E, (c) => `tileE[${c} * TILE + slot] = e[${c}];`)}`)}
    workgroupBarrier();
    if (me.live) {
      for (var s = 0; s < S; s++) {
        let u = me.start + base + s;
        if (u < me.end) {
          let slot = g * STRIDE + s * W + lane % W;
          ${step}
        }
      }
    }${store}
    workgroupBarrier();
  }`;
  }

  return /* wgsl */ `
${uniformStruct(alg)}
${bindings.join('\n')}
const W = ${W};
const G = ${G};
const BLOCKS = ${blocks};
const LANES = ${lanes};
${tiles}
${alg.wgsl}
${kind.raw ? alg.rawWgsl : ''}
${rescan ? alg.seedWgsl : ''}
${loadElemWgsl(alg, kind.raw, kind.reverse)}

/** One invocation's chunk: batch, chunk, channel, steps [start, end), and whether it exists. */
struct Chunk { b : i32, k : i32, d : i32, start : i32, end : i32, live : bool }

fn chunkOf(group : i32, w : i32) -> Chunk {
  let bk = group / BLOCKS;
  let k = bk % uniforms.N;
  let d = (group % BLOCKS) * W + w;
  let start = k * uniforms.chunk;
  return Chunk(bk / uniforms.N, k, d, start, min(start + uniforms.chunk, uniforms.T), group < uniforms.groups && d < uniforms.D);
}

@compute @workgroup_size(${lanes})
fn main(@builtin(local_invocation_index) li : u32, @builtin(workgroup_id) wid : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>) {
  let lane = i32(li);
${
  staged
    ? `  let first = i32(wid.x + wid.y * nwg.x) * G;
  let g = lane / W;
  let me = chunkOf(first + g, lane % W);`
    : `  // Flat: invocation i is (batch, chunk, channel) with the channel fastest (a single block of W = D).
  let i = i32(wid.x + wid.y * nwg.x) * LANES + lane;
  let me = chunkOf(i / W, i % W);`
}
${start}
${body}
${finish}
}
`;
}
