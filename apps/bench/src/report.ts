/**
 * Writing benchmark outputs: every file goes to a temporary name first and is renamed, so an
 * interrupted or failed run never leaves a half-written result; `index.html` shows every suite's
 * plots and tables found in the output folder together.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes `text` to `path` atomically (temporary file, then rename).
 *
 * @example
 * ```ts
 * writeAtomic('bench-results/scaling.json', JSON.stringify(report));
 * ```
 */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** Creates the output folder and writes each `name → text` file in it atomically. */
export function writeOutputs(dir: string, files: Record<string, string>): string[] {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeAtomic(join(dir, name), text);
  return Object.keys(files);
}

const SUITES: readonly { id: string; title: string; what: string }[] = [
  { id: 'gru', title: 'GRU timings', what: 'Sequential, quasi-DEER and DEER on one GRU, warm-up then median of timed runs, each checked against sequential.' },
  { id: 'scaling', title: 'Scaling', what: 'Wall time against sequence length T per method, for several state sizes D and batch sizes (ELK paper Fig. 2 / 6), and peak memory against D.' },
  { id: 'stability', title: 'Stability', what: 'Iterations to converge per method on the problems adaptive damping was tuned on (the trained AR-GRU, Lorenz-96) and on held-out ones (random GRU, LSTM and Elman cells, Lorenz-96 at other sizes and forcings), with the targets per set; residual per iteration and iterations against fixed σ² (ELK paper Fig. 4, 7, 8).' },
  { id: 'peers', title: 'Peers', what: 'tf.layers.gru against pelk on the same TensorFlow.js backend (wasm, cpu), same weights and inputs, with a per-iteration profile.' },
  { id: 'kernels', title: 'WebAssembly kernels', what: 'Each kernel of @pelk/backend-wasm in µs per step and GMAC/s or GB/s, on one thread and on every available one.' },
  { id: 'gpu', title: 'WebGPU', what: 'Sequential (GPU-resident) against quasi-DEER, DEER and quasi-ELK on the WebGPU adapter, with dispatches and submissions per iteration; the fused kernels against op by op; the scans in GB/s beside a buffer copy.' },
];

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Writes `index.html` in `dir`, showing for each suite present its description, its text table
 * (`<suite>.txt`) and its SVG plots (`<suite>*.svg`), with links to the JSON.
 */
export function writeHtmlReport(dir: string): string {
  const files = existsSync(dir) ? readdirSync(dir) : [];
  const sections = SUITES.filter((s) => files.includes(`${s.id}.json`)).map((s) => {
    const svgs = files.filter((f) => f.startsWith(s.id) && f.endsWith('.svg')).sort();
    const txt = files.includes(`${s.id}.txt`) ? readFileSync(join(dir, `${s.id}.txt`), 'utf8') : '';
    return [
      `<section id="${s.id}"><h2>${s.title}</h2><p>${s.what} Data: <a href="${s.id}.json">${s.id}.json</a>.</p>`,
      txt ? `<pre>${escapeHtml(txt)}</pre>` : '',
      ...svgs.map((f) => `<figure><img src="${f}" alt="${s.title}: ${f}"></figure>`),
      '</section>',
    ].join('\n');
  });
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pelk benchmarks</title>
<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}img{max-width:100%;border:1px solid #eee}</style>
</head><body><h1>pelk benchmarks</h1>
<p>Written by <code>pnpm pelk bench</code> on ${new Date().toISOString()}. Suites: ${SUITES.filter((s) => files.includes(`${s.id}.json`)).map((s) => `<a href="#${s.id}">${s.title}</a>`).join(', ') || 'none yet'}.</p>
${sections.join('\n')}
</body></html>
`;
  writeAtomic(join(dir, 'index.html'), html);
  return join(dir, 'index.html');
}
