/**
 * `applyCorrection` on WebGPU: the Newton update `sanitize(current + correction)` with its counts
 * and the step `max |value − current|`, in one dispatch. The three reductions go to atomic words
 * (counts added, the step's magnitude bits maximised), read back with the iteration's other scalars.
 */
import type { CommandRecorder, Kernel } from './recorder.js';
import { MAGNITUDE_BITS_WGSL } from './rnn-wgsl.js';

/** Invocations per workgroup (one element each). */
const WORKGROUP = 256;

const CORRECTION_WGSL = `
struct Params { n : u32, bound : f32, pad0 : u32, pad1 : u32 }
@group(0) @binding(0) var<uniform> P : Params;
@group(0) @binding(1) var<storage, read> CUR : array<f32>;
@group(0) @binding(2) var<storage, read> COR : array<f32>;
@group(0) @binding(3) var<storage, read_write> OUT : array<f32>;
/** [non-finite count, clipped count, step magnitude bits]. */
@group(0) @binding(4) var<storage, read_write> STATS : array<atomic<u32>>;
var<workgroup> wg : array<atomic<u32>, 3>;
${MAGNITUDE_BITS_WGSL}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(local_invocation_index) local : u32, @builtin(workgroup_id) wid : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>) {
  let i = (wid.x + wid.y * nwg.x) * ${WORKGROUP}u + local;
  if (i < P.n) {
    let s = CUR[i];
    var v = s + COR[i];
    // Classified on the bits: a compiler may assume floats are finite, never integers.
    let bits = bitcast<u32>(v);
    let special = (bits & 0x7f800000u) == 0x7f800000u;
    let beyond = !special && abs(v) > P.bound;
    let signed = select(P.bound, -P.bound, (bits & 0x80000000u) != 0u);
    if (special && (bits & 0x007fffffu) != 0u) {
      v = 0.0;
      atomicAdd(&wg[0], 1u);
    } else if (special) {
      v = signed;
      atomicAdd(&wg[0], 1u);
    } else if (beyond) {
      v = signed;
      atomicAdd(&wg[1], 1u);
    }
    OUT[i] = v;
    atomicMax(&wg[2], magnitudeBits(v - s));
  }
  workgroupBarrier();
  if (local < 3u) {
    let w = atomicLoad(&wg[local]);
    if (local == 2u) { atomicMax(&STATS[2], w); } else if (w != 0u) { atomicAdd(&STATS[local], w); }
  }
}`;

/** The compiled correction kernel of a recorder. */
export function correctionKernel(recorder: CommandRecorder): Kernel {
  return recorder.kernel('pelk-apply-correction', CORRECTION_WGSL, ['uniform', 'read', 'read', 'write', 'write'], WORKGROUP);
}

/** Workgroups for `n` elements. */
export function correctionWorkgroups(n: number): number {
  return Math.ceil(n / WORKGROUP);
}

/** The uniform words of a dispatch over `n` elements with clip bound `bound`. */
export function correctionUniforms(n: number, bound: number): Uint32Array {
  const words = new Uint32Array(4);
  words[0] = n;
  new Float32Array(words.buffer)[1] = Math.min(bound, 3.4028234663852886e38);
  return words;
}
