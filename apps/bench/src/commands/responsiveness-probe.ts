/**
 * How responsive an evaluation keeps the event loop: the longest stall a 5 ms interval timer sees
 * during a run, and how late an abort fired by a timer takes effect (from when the timer was due to
 * when `evaluate` rejects). Not a test — a measurement, quoted in the issue notes.
 *
 *     node --conditions=@pelk/source --import tsx apps/bench/src/commands/responsiveness-probe.ts [--quick]
 *
 * Runs sequential (T = 2,000,000) and quasi-DEER (T = 200,000) on a GRU (D = 32, I = 2, float64)
 * on the CPU backend; `--quick` divides T by 10.
 */
import { CpuBackend } from '@pelk/backend-cpu';
import { type Method, evaluate } from '@pelk/core';
import { gru } from '@pelk/models';

const quick = process.argv.includes('--quick');
const backend = new CpuBackend();
const cell = gru.random({ inputSize: 2, hiddenSize: 32, seed: 1 });

function inputs(T: number) {
  return { data: Float64Array.from({ length: T * 2 }, (_, k) => Math.sin(k * 0.01)), shape: [T, 2] };
}

/** Runs once, recording the event loop's longest stall; with `abortAt`, aborts then. */
async function probe(method: Method, T: number, abortAt?: number) {
  const x = inputs(T);
  const controller = new AbortController();
  const started = performance.now();
  let last = started;
  let longest = 0;
  const watch = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 5);
  const timer = abortAt === undefined ? undefined : setTimeout(() => controller.abort(), abortAt);
  const outcome = await evaluate(cell, x, { backend, method, maxIterations: 8, signal: controller.signal }).then(
    (r) => {
      r.dispose();
      return 'finished';
    },
    (e: { code?: string }) => e.code ?? String(e),
  );
  const ended = performance.now();
  clearInterval(watch);
  clearTimeout(timer);
  const late = abortAt === undefined ? undefined : ended - started - abortAt;
  return { outcome, ms: Math.round(ended - started), longestStallMs: Math.round(longest), lateMs: late === undefined ? undefined : Math.round(late) };
}

for (const [method, T] of [
  ['sequential', quick ? 200_000 : 2_000_000],
  ['quasi-deer', quick ? 20_000 : 200_000],
] as const) {
  await probe(method, T); // warm-up: first-touch allocations and compilation
  const full = await probe(method, T);
  console.log(`${method} T=${T}: full run ${full.ms} ms, longest event-loop stall ${full.longestStallMs} ms`);
  for (const fraction of [0.15, 0.4, 0.65, 0.9]) {
    const at = Math.round(fraction * full.ms);
    const r = await probe(method, T, at);
    const what = r.outcome === 'ABORTED' ? `rejected ${r.lateMs} ms after the timer was due` : `${r.outcome} (in ${r.ms} ms)`;
    console.log(`  abort at ${at} ms: ${what}; longest stall ${r.longestStallMs} ms`);
  }
  console.log(`  tensors left: ${backend.memory().tensors}`);
}
