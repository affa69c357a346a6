/**
 * Reduce-then-scan driver for per-(batch, channel) scans over `[B, T, D]` with any element
 * algebra (`ScanAlgebra`), with no dependence on forward progress between workgroups:
 *
 * 1. reduce: one invocation per (batch, chunk, channel) folds `chunk` steps into an aggregate;
 * 2. the aggregates `[E, B, ⌈T/chunk⌉, D]` form the same kind of scan, solved recursively with
 *    the same seed; once a level has at most `chunk` steps it is scanned sequentially per channel
 *    (a rescan with a single chunk);
 * 3. rescan: one invocation per (batch, chunk, channel) replays its chunk from the carried state.
 *
 * Work: O(T) element operations per channel (each level is `chunk`× shorter). Dispatches:
 * `2L + F`, where `L = max(0, ⌈log_chunk T⌉ − 1)` is the number of reduce levels and `F` the
 * number of state components written out at level 0 (one dispatch each).
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { Tensor } from '@tensorflow/tfjs-core';
import { ceilDiv, disposeAll, runKernel } from './program.js';
import type { ScanAlgebra } from './scan-algebra.js';
import { type LevelShape, scanUniforms } from './scan-common.wgsl.js';
import { scanReduceWgsl } from './scan-reduce.wgsl.js';
import { type RescanOutput, scanRescanWgsl } from './scan-rescan.wgsl.js';

/** Invocations per workgroup of the generic scan kernels. */
const WORKGROUP = 64;

/** A scan problem for `chunkedScan`. */
export interface ChunkedScanProblem {
  readonly B: number;
  readonly T: number;
  readonly D: number;
  /** Run in reverse time at level 0 (scan step u reads and writes time T−1−u). */
  readonly reverse: boolean;
  /** Steps per chunk, ≥ 2 (each level is `chunk` times shorter than the one below). */
  readonly chunk: number;
  /** Tensors bound to `alg.rawInputs`, each `[B, T, D]`. */
  readonly raw: readonly Tensor[];
  /** Tensors bound to `alg.seedInputs`, each `[B, D]`. */
  readonly seed: readonly Tensor[];
  /** Values of `alg.floatUniforms`. */
  readonly floats?: Readonly<Record<string, number>>;
}

/** Number of reduce levels the driver uses for length `T` and chunk `chunk` (≥ 2 when T > 1). */
export function reduceLevels(T: number, chunk: number): number {
  let levels = 0;
  for (let n = T; n > chunk; n = ceilDiv(n, chunk)) levels++;
  return levels;
}

/**
 * Solves the scan and returns, for each requested state component, the `[B, T, D]` tensor of that
 * component at every time step (actual time order). The caller owns the returned tensors; every
 * intermediate is disposed.
 */
export function chunkedScan(
  backend: WebGPUBackend,
  alg: ScanAlgebra,
  p: ChunkedScanProblem,
  components: readonly number[],
): Tensor[] {
  const { B, T, D, chunk } = p;
  if (chunk < 2 && T > 1) throw new RangeError('pelk webgpu: chunked scans need chunk ≥ 2');
  const floats = p.floats ?? {};
  const key = (pass: string, flags: string) => `pelk_scan_${pass}_${alg.name}_${flags}`;

  const reduce = (input: readonly Tensor[], raw: boolean, level: LevelShape): Tensor => {
    const N = ceilDiv(level.T, level.chunk);
    return runKernel(
      backend,
      {
        key: key('reduce', `${raw ? 'raw' : 'packed'}_${raw && p.reverse ? 'rev' : 'fwd'}`),
        variableNames: raw ? alg.rawInputs : ['elems'],
        outputShape: [alg.elementSize, B, N, D],
        workgroupSize: WORKGROUP,
        workgroups: ceilDiv(B * N * D, WORKGROUP),
        uniforms: scanUniforms(alg, level, floats),
        code: scanReduceWgsl(alg, raw, p.reverse),
      },
      input,
    );
  };

  const rescan = (input: readonly Tensor[], raw: boolean, level: LevelShape, carry: Tensor | null, output: RescanOutput): Tensor => {
    const N = ceilDiv(level.T, level.chunk);
    const outputShape = output.kind === 'packed' ? [alg.stateSize, B, level.T, D] : [B, level.T, D];
    const outKey = output.kind === 'packed' ? 'packed' : `c${output.component}`;
    return runKernel(
      backend,
      {
        key: key('rescan', `${raw ? 'raw' : 'packed'}_${raw && p.reverse ? 'rev' : 'fwd'}_${carry ? 'carry' : 'seed'}_${outKey}`),
        variableNames: [...(raw ? alg.rawInputs : ['elems']), ...alg.seedInputs, ...(carry ? ['carry'] : [])],
        outputShape,
        workgroupSize: WORKGROUP,
        workgroups: ceilDiv(B * N * D, WORKGROUP),
        uniforms: scanUniforms(alg, level, floats),
        code: scanRescanWgsl(alg, raw, p.reverse, carry !== null, output),
      },
      [...input, ...p.seed, ...(carry ? [carry] : [])],
    );
  };

  /** States `[S, B, T_L, D]` (scan order) of the scan over packed aggregates `elems`. */
  const solvePacked = (elems: Tensor, TL: number): Tensor => {
    if (TL <= chunk) return rescan([elems], false, { B, T: TL, D, chunk: TL }, null, { kind: 'packed' });
    const level = { B, T: TL, D, chunk };
    const agg = reduce([elems], false, level);
    let carry: Tensor | null = null;
    try {
      carry = solvePacked(agg, ceilDiv(TL, chunk));
      return rescan([elems], false, level, carry, { kind: 'packed' });
    } finally {
      disposeAll(agg, carry);
    }
  };

  // Level 0.
  const single = T <= chunk;
  const level0: LevelShape = { B, T, D, chunk: single ? T : chunk };
  let carry: Tensor | null = null;
  try {
    if (!single) {
      const agg = reduce(p.raw, true, level0);
      try {
        carry = solvePacked(agg, ceilDiv(T, chunk));
      } finally {
        agg.dispose();
      }
    }
    const outs: Tensor[] = [];
    try {
      for (const c of components) outs.push(rescan(p.raw, true, level0, carry, { kind: 'component', component: c }));
    } catch (e) {
      disposeAll(...outs);
      throw e;
    }
    return outs;
  } finally {
    disposeAll(carry);
  }
}
