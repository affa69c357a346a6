/**
 * Dense linear recurrence `s_t = A_t s_{t−1} + b_t` per batch entry by reduce-then-scan, the same
 * recursion as `chunkedScan` with `D × (D+1)` augmented affine maps as elements:
 * reduce (matrix products, a group of invocations per (batch, chunk)) → recurse on the chunk
 * aggregates `[B, N, D, D+1]` → rescan (matrix–vector products). Dispatches `2L + 1` with
 * `L = max(0, ⌈log_chunk T⌉ − 1)`.
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { Tensor } from '@tensorflow/tfjs-core';
import { type DenseLevel, denseUniforms } from './dense-common.wgsl.js';
import { type DenseReduceLayout, denseReduceWgsl } from './dense-reduce.wgsl.js';
import { type DenseRescanLayout, denseRescanWgsl } from './dense-rescan.wgsl.js';
import { ceilDiv, disposeAll, runKernel } from './program.js';

/** Invocations per workgroup the rescan aims for (several small groups share one workgroup). */
const RESCAN_WORKGROUP = 64;

/** A dense scan problem. */
export interface DenseScanProblem {
  readonly B: number;
  readonly T: number;
  readonly D: number;
  readonly reverse: boolean;
  /** Steps per chunk, ≥ 2. */
  readonly chunk: number;
  /** `[B, T, D, D]`. */
  readonly A: Tensor;
  /** `[B, T, D]`. */
  readonly b: Tensor;
  /** `[B, D]`. */
  readonly init: Tensor;
  /** Force the reduce's workgroup-memory (`true`) or global-memory (`false`) variant; default: workgroup memory when it fits. */
  readonly workgroupMemory?: boolean;
}

/** The reduce kernel's layout for `D` on `backend`'s device. */
export function denseReduceLayout(backend: WebGPUBackend, D: number, workgroupMemory?: boolean): DenseReduceLayout {
  const limits = backend.device.limits;
  const maxInvocations = Math.min(256, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  const entries = D * (D + 1);
  const ipg = Math.min(entries, maxInvocations);
  const groupsPerWorkgroup = Math.max(1, Math.floor(maxInvocations / ipg));
  const fits = 2 * groupsPerWorkgroup * entries * 4 <= limits.maxComputeWorkgroupStorageSize;
  if (workgroupMemory === true && !fits) {
    throw new RangeError(`pelk webgpu: dense reduce for D = ${D} does not fit in workgroup memory`);
  }
  return { D, ipg, groupsPerWorkgroup, epi: ceilDiv(entries, ipg), workgroupMemory: workgroupMemory ?? fits };
}

/** The rescan kernel's layout for `D` on `backend`'s device. */
export function denseRescanLayout(backend: WebGPUBackend, D: number): DenseRescanLayout {
  const limits = backend.device.limits;
  // A group's rows are matrix–vector dot products of length D; beyond 64 rows an invocation
  // takes several rather than growing the workgroup.
  const ipg = Math.min(D, RESCAN_WORKGROUP, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  const groupsPerWorkgroup = Math.max(1, Math.floor(RESCAN_WORKGROUP / ipg));
  if (groupsPerWorkgroup * D * 4 > limits.maxComputeWorkgroupStorageSize) {
    throw new RangeError(`pelk webgpu: dense rescan state for D = ${D} does not fit in workgroup memory`);
  }
  return { D, ipg, groupsPerWorkgroup, rpi: ceilDiv(D, ipg) };
}

/** Solves the dense scan; returns `[B, T, D]` (caller owns it). Every intermediate is disposed. */
export function denseChunkedScan(backend: WebGPUBackend, p: DenseScanProblem): Tensor {
  const { B, T, D, chunk, reverse } = p;
  if (chunk < 2 && T > 1) throw new RangeError('pelk webgpu: chunked scans need chunk ≥ 2');
  const red = denseReduceLayout(backend, D, p.workgroupMemory);
  const res = denseRescanLayout(backend, D);
  const dir = (raw: boolean) => (raw && reverse ? 'rev' : 'fwd');

  const reduce = (input: readonly Tensor[], raw: boolean, level: DenseLevel): Tensor => {
    const N = ceilDiv(level.T, level.chunk);
    return runKernel(
      backend,
      {
        key: `pelk_dense_reduce_D${D}_${red.ipg}x${red.groupsPerWorkgroup}_${red.workgroupMemory ? 'wg' : 'global'}_${raw ? 'raw' : 'packed'}_${dir(raw)}`,
        variableNames: raw ? ['xA', 'xB'] : ['elems'],
        outputShape: [B, N, D, D + 1],
        workgroupSize: red.ipg * red.groupsPerWorkgroup,
        workgroups: ceilDiv(B * N, red.groupsPerWorkgroup),
        uniforms: denseUniforms(level),
        code: denseReduceWgsl(red, raw, reverse),
      },
      input,
    );
  };

  const rescan = (input: readonly Tensor[], raw: boolean, level: DenseLevel, carry: Tensor | null): Tensor => {
    const N = ceilDiv(level.T, level.chunk);
    return runKernel(
      backend,
      {
        key: `pelk_dense_rescan_D${D}_${res.ipg}x${res.groupsPerWorkgroup}_${raw ? 'raw' : 'packed'}_${dir(raw)}_${carry ? 'carry' : 'seed'}`,
        variableNames: [...(raw ? ['xA', 'xB'] : ['elems']), 'xInit', ...(carry ? ['carry'] : [])],
        outputShape: [B, level.T, D],
        workgroupSize: res.ipg * res.groupsPerWorkgroup,
        workgroups: ceilDiv(B * N, res.groupsPerWorkgroup),
        uniforms: denseUniforms(level),
        code: denseRescanWgsl(res, raw, reverse, carry !== null),
      },
      [...input, p.init, ...(carry ? [carry] : [])],
    );
  };

  /** States `[B, T_L, D]` (scan order) of the scan over the aggregates `elems`. */
  const solvePacked = (elems: Tensor, TL: number): Tensor => {
    if (TL <= chunk) return rescan([elems], false, { B, T: TL, chunk: TL }, null);
    const level = { B, T: TL, chunk };
    const agg = reduce([elems], false, level);
    let carry: Tensor | null = null;
    try {
      carry = solvePacked(agg, ceilDiv(TL, chunk));
      return rescan([elems], false, level, carry);
    } finally {
      disposeAll(agg, carry);
    }
  };

  const raw = [p.A, p.b];
  if (T <= chunk) return rescan(raw, true, { B, T, chunk: T }, null);
  const level0 = { B, T, chunk };
  let carry: Tensor | null = null;
  const agg = reduce(raw, true, level0);
  try {
    carry = solvePacked(agg, ceilDiv(T, chunk));
  } finally {
    agg.dispose();
  }
  try {
    return rescan(raw, true, level0, carry);
  } finally {
    carry.dispose();
  }
}
