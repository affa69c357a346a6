/**
 * Reduce-then-scan driver for per-(batch, channel) scans over `[B, T, D]` with any element
 * algebra (`ScanAlgebra`), with no dependence on forward progress between workgroups:
 *
 * 1. reduce: one invocation per (batch, chunk, channel) folds `chunk` steps into an aggregate;
 * 2. the aggregates `[E, B, ⌈T/chunk⌉, D]` form the same kind of scan, solved recursively with
 *    the same seed; once a level has at most `chunk` steps it is scanned sequentially per channel
 *    (a rescan with a single chunk);
 * 3. rescan: one invocation per (batch, chunk, channel) replays its chunk from the carried state,
 *    writing every state component in the same pass.
 *
 * Work: O(T) element operations per channel (each level is `chunk`× shorter). Dispatches:
 * `2L + 1`, where `L = max(0, ⌈log_chunk T⌉ − 1)` is the number of reduce levels. The kernels are
 * recorded into tfjs's command stream (`CommandRecorder`), since the level-0 rescan has one output
 * per state component. Two memory layouts (`scan-kernel.wgsl.ts`): direct, and staged through
 * workgroup memory so that reads and writes coalesce for small D.
 */
import type { Tensor as PelkTensor } from '@pelk/core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { Tensor } from '@tensorflow/tfjs-core';
import { type CommandRecorder, checkBindingLimit, recorderFor } from '../fused/recorder.js';
import { ceilDiv, disposeAll, uninitialisedTensor } from './program.js';
import type { ScanAlgebra } from './scan-algebra.js';
import { type ScanKernelKind, type ScanLayout, scanBindings, scanKernelWgsl, scanUniformWords, stagedScan, type TileLayout, tileLayout } from './scan-kernel.wgsl.js';

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
  /** Memory layout of the kernels; default `'auto'`. */
  readonly layout?: ScanLayout;
}

/** Number of reduce levels the driver uses for length `T` and chunk `chunk` (≥ 2 when T > 1). */
export function reduceLevels(T: number, chunk: number): number {
  let levels = 0;
  for (let n = T; n > chunk; n = ceilDiv(n, chunk)) levels++;
  return levels;
}

/** Refuses, before anything is allocated, a scan whose largest buffer exceeds one storage binding. */
function checkScanLimits(recorder: CommandRecorder, alg: ScanAlgebra, p: ChunkedScanProblem): void {
  const { B, T, D, chunk } = p;
  const what = `${alg.name} scan of B = ${B}, T = ${T}, D = ${D}`;
  checkBindingLimit(recorder.limits, `${alg.name} scan output`, B * T * D, what);
  // The largest packed buffer: the first level's aggregates or states.
  const first = ceilDiv(T, chunk);
  if (T > chunk) checkBindingLimit(recorder.limits, `${alg.name} scan aggregates`, Math.max(alg.elementSize, alg.stateSize) * B * first * D, what);
}

/**
 * Solves the scan and returns every state component as a `[B, T, D]` tensor at every time step
 * (actual time order). The caller owns the returned tensors; every intermediate is disposed.
 */
export function chunkedScan(backend: WebGPUBackend, alg: ScanAlgebra, p: ChunkedScanProblem): Tensor[] {
  const { B, T, D, chunk } = p;
  if (chunk < 2 && T > 1) throw new RangeError('pelk webgpu: chunked scans need chunk ≥ 2');
  const recorder = recorderFor(backend);
  checkScanLimits(recorder, alg, p);
  const floats = p.floats ?? {};
  const staged = stagedScan(p.layout ?? 'auto', D, recorder.cpuAdapter);
  const layout: TileLayout = tileLayout(alg, D, recorder.limits.maxComputeWorkgroupStorageSize, staged);

  const run = (kind: ScanKernelKind, TL: number, levelChunk: number, inputs: readonly Tensor[], outputs: readonly Tensor[]) => {
    const key = [
      'pelk-scan',
      alg.name,
      kind.pass,
      kind.raw ? 'raw' : 'packed',
      kind.raw && kind.reverse ? 'rev' : 'fwd',
      kind.carry ? 'carry' : 'seed',
      kind.output,
      `${staged ? `staged${layout.S}` : 'direct'}W${layout.W}G${layout.G}B${layout.blocks}`,
    ].join('-');
    const { reads, writes } = scanBindings(alg, kind);
    const kernel = recorder.kernel(key, scanKernelWgsl(alg, kind, layout), ['uniform', ...reads.map(() => 'read' as const), ...writes.map(() => 'write' as const)], layout.lanes);
    const groups = B * ceilDiv(TL, levelChunk) * layout.blocks;
    // Staged: G chunk groups per workgroup; direct: 64 invocations per workgroup (W = D, one block).
    const workgroups = layout.staged ? ceilDiv(groups, layout.G) : ceilDiv(groups * layout.W, layout.lanes);
    const words = scanUniformWords(alg, { B, T: TL, D, chunk: levelChunk }, layout, floats);
    recorder.dispatch(kernel, words, [...inputs, ...outputs] as unknown as PelkTensor[], workgroups);
  };

  const reduce = (input: readonly Tensor[], raw: boolean, TL: number): Tensor => {
    const agg = uninitialisedTensor(backend, [alg.elementSize, B, ceilDiv(TL, chunk), D]);
    try {
      run({ pass: 'reduce', raw, reverse: p.reverse, carry: false, output: 'packed' }, TL, chunk, input, [agg]);
    } catch (e) {
      agg.dispose();
      throw e;
    }
    return agg;
  };

  /** States `[S, B, T_L, D]` (scan order) of the scan over packed aggregates `elems`. */
  const solvePacked = (elems: Tensor, TL: number): Tensor => {
    const states = uninitialisedTensor(backend, [alg.stateSize, B, TL, D]);
    let agg: Tensor | null = null;
    let carry: Tensor | null = null;
    try {
      if (TL <= chunk) {
        run({ pass: 'rescan', raw: false, reverse: false, carry: false, output: 'packed' }, TL, TL, [elems, ...p.seed], [states]);
      } else {
        agg = reduce([elems], false, TL);
        carry = solvePacked(agg, ceilDiv(TL, chunk));
        run({ pass: 'rescan', raw: false, reverse: false, carry: true, output: 'packed' }, TL, chunk, [elems, ...p.seed, carry], [states]);
      }
      return states;
    } catch (e) {
      states.dispose();
      throw e;
    } finally {
      disposeAll(agg, carry);
    }
  };

  // Level 0: reduce, solve the aggregates' scan, then one rescan writing every component.
  const outs = Array.from({ length: alg.stateSize }, () => uninitialisedTensor(backend, [B, T, D]));
  let agg: Tensor | null = null;
  let carry: Tensor | null = null;
  try {
    if (T <= chunk) {
      run({ pass: 'rescan', raw: true, reverse: p.reverse, carry: false, output: 'components' }, T, Math.max(T, 1), [...p.raw, ...p.seed], outs);
    } else {
      agg = reduce(p.raw, true, T);
      carry = solvePacked(agg, ceilDiv(T, chunk));
      run({ pass: 'rescan', raw: true, reverse: p.reverse, carry: true, output: 'components' }, T, chunk, [...p.raw, ...p.seed, carry], outs);
    }
    return outs;
  } catch (e) {
    disposeAll(...outs);
    throw e;
  } finally {
    disposeAll(agg, carry);
  }
}
