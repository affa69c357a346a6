/**
 * The PyTorch peer of `pelk bench`: `torch.nn.GRU` on the CPU, in float32, on the same weights and
 * inputs (apps/bench/peers/torch_gru.py), run through the Python named by `PELK_PYTHON` (default
 * `python3`). Where no Python with torch is found, the row says so instead of timings.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One peer's timing (float32, batch 1). */
export interface PeerRow {
  readonly implementation: string;
  readonly T: number;
  readonly medianMs?: number;
  readonly usPerStep?: number;
  /** `max |torch states − pelk sequential float32 states|`. */
  readonly maxAbsDiffVsPelk?: number;
  /** Why there are no timings. */
  readonly skipped?: string;
}

const SCRIPT = fileURLToPath(new URL('../peers/torch_gru.py', import.meta.url));

/**
 * Runs `torch.nn.GRU` on a torch-convention GRU's weights and `[T, I]` inputs; compares its states
 * with `reference` (pelk's sequential float32 states).
 *
 * @example
 * ```ts
 * const row = runTorchGru(cell.toSpec().weights, inputs.data, T, I, H, 1, 3, reference);
 * ```
 */
export function runTorchGru(
  weights: unknown,
  inputs: Float64Array,
  T: number,
  I: number,
  H: number,
  warmup: number,
  runs: number,
  reference: ArrayLike<number> | undefined,
): PeerRow {
  const python = process.env.PELK_PYTHON ?? 'python3';
  const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    return { implementation: 'torch.nn.GRU', T, skipped: `no Python with torch at '${python}' (set PELK_PYTHON)` };
  }
  const dir = mkdtempSync(join(tmpdir(), 'pelk-torch-'));
  try {
    writeFileSync(join(dir, 'weights.json'), JSON.stringify(weights));
    writeFileSync(join(dir, 'inputs.f32'), Float32Array.from(inputs));
    const args = [SCRIPT, join(dir, 'weights.json'), join(dir, 'inputs.f32'), join(dir, 'states.f32'), T, I, H, warmup, runs].map(String);
    const run = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (run.status !== 0) return { implementation: 'torch.nn.GRU', T, skipped: `torch_gru.py failed: ${run.stderr.trim().split('\n').pop()}` };
    const out = JSON.parse(run.stdout.trim().split('\n').pop()!) as { implementation: string; medianMs: number };
    const states = new Float32Array(readFileSync(join(dir, 'states.f32')).buffer.slice(0));
    let diff = reference ? 0 : Number.NaN;
    if (reference) for (let i = 0; i < states.length; i++) diff = Math.max(diff, Math.abs(states[i] - reference[i]));
    return { implementation: out.implementation, T, medianMs: out.medianMs, usPerStep: (1000 * out.medianMs) / T, maxAbsDiffVsPelk: diff };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
