/**
 * The demo page: settings from the URL and the form, a run on WebGPU or on the CPU backend in a
 * Web Worker, and the pictures. `window.pelkDemo` mirrors the state as plain JSON for tests and
 * scripts (`status`, `settings`, `backend`, `device`, `methods`, `message`), with `run()` and
 * `cancel()`.
 */
import { type Engine, cpuEngine, webGpuEngine, webGpuUnavailable } from './engines.js';
import { channelsPlot, residualPlot, speedupPlot } from './plots.js';
import { describeSettings } from './problems.js';
import type { MethodSummary, RunEvent } from './runner.js';
import { type BackendChoice, METHODS, type Settings, describeProblem, parseSettings, settingsQuery } from './settings.js';

/** What `window.pelkDemo` shows. */
interface DemoState {
  status: 'idle' | 'running' | 'done' | 'error';
  settings: Settings;
  /** Problems with the URL's settings (each replaced by its default). */
  problems: string[];
  backend: string | null;
  device: string | null;
  problem: string | null;
  methods: MethodSummary[];
  /** Iterates still waiting to be drawn (the animation trails the run). */
  animating: boolean;
  /** The last error or notice, as shown on the page. */
  message: string | null;
  run: () => Promise<void>;
  cancel: () => void;
}

const $ = <T extends Element>(selector: string) => document.querySelector(selector) as T;
const form = $<HTMLFormElement>('#settings');
const field = (name: string) => form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement;

const parsed = parseSettings(location.search);
const state: DemoState = {
  status: 'idle',
  settings: parsed.settings,
  problems: parsed.problems.map(describeProblem),
  backend: null,
  device: null,
  problem: null,
  methods: [],
  animating: false,
  message: null,
  run: () => run(),
  cancel: () => controller?.abort(),
};
(window as unknown as { pelkDemo: DemoState }).pelkDemo = state;

function showMessage(text: string | null): void {
  state.message = text;
  const box = $<HTMLParagraphElement>('#message');
  box.hidden = text === null;
  box.textContent = text ?? '';
}

// ---- the form ----------------------------------------------------------------------------------

$('#methods').append(
  ...METHODS.map((m) => {
    const label = document.createElement('label');
    label.innerHTML = `<input type="checkbox" name="method" value="${m}" /> ${m}`;
    return label;
  }),
);

function writeForm(s: Settings): void {
  field('model').value = s.model;
  for (const key of ['D', 'T', 'B', 'seed'] as const) field(key).value = String(s[key]);
  field('gain').value = String(s.gain);
  field('F').value = String(s.forcing);
  field('tol').value = s.tolerance === undefined ? '' : String(s.tolerance);
  field('maxIter').value = s.maxIterations === undefined ? '' : String(s.maxIterations);
  field('sigma').value = s.sigmaSq === 'adaptive' ? '' : String(s.sigmaSq);
  field('backend').value = s.backend;
  (field('animate') as HTMLInputElement).checked = s.animate;
  for (const box of form.querySelectorAll<HTMLInputElement>('input[name=method]')) box.checked = s.methods.includes(box.value as never);
}

/** The form as a query, read back through the same parser as the URL (one set of rules). */
function readForm(): { settings: Settings; problems: string[] } {
  const q = new URLSearchParams();
  q.set('model', field('model').value);
  for (const key of ['D', 'T', 'B', 'seed', 'gain', 'F']) q.set(key, field(key).value);
  for (const key of ['tol', 'maxIter', 'sigma']) if (field(key).value.trim() !== '') q.set(key, field(key).value.trim());
  q.set('backend', field('backend').value);
  q.set('animate', (field('animate') as HTMLInputElement).checked ? '1' : '0');
  const methods = [...form.querySelectorAll<HTMLInputElement>('input[name=method]:checked')].map((b) => b.value);
  q.set('method', methods.join(','));
  const { settings, problems } = parseSettings(q);
  return { settings, problems: problems.map(describeProblem) };
}

// ---- engines -----------------------------------------------------------------------------------

let engine: Engine | null = null;
let engineChoice: BackendChoice | null = null;

async function engineFor(choice: BackendChoice): Promise<Engine> {
  if (engine && engineChoice === choice) return engine;
  engine?.dispose();
  engine = null;
  $('#engine').textContent = 'Backend: starting…';
  let next: Engine;
  if (choice === 'cpu') next = await cpuEngine();
  else {
    const why = await webGpuUnavailable();
    if (why === null) next = await webGpuEngine();
    else if (choice === 'webgpu') throw new Error(`WebGPU is not available: ${why}. Choose the CPU backend.`);
    else next = await cpuEngine();
  }
  engine = next;
  engineChoice = choice;
  state.backend = next.backend;
  state.device = next.device;
  $('#engine').textContent = `Backend: ${next.backend} — ${next.device}${next.kind === 'cpu' ? ' (in a Web Worker)' : ''}`;
  return next;
}

// ---- pictures ----------------------------------------------------------------------------------

let reference: { channels: number[][]; stride: number } | null = null;
/** Iterates waiting to be drawn: one per frame interval, so fast iterations still animate. */
const frames: { label: string; method: string; channels: number[][] }[] = [];
let drawing: ReturnType<typeof setTimeout> | null = null;
/** A frame per 90 ms while the run goes on; once it has ended, the rest play at 20 ms. */
const frameMs = () => (state.status === 'running' ? 90 : 20);

function drawChannels(iterate?: { label: string; method: string; channels: number[][] }): void {
  if (reference) $('#channels').replaceChildren(channelsPlot(reference.channels, reference.stride, iterate));
}

function queueFrame(frame: { label: string; method: string; channels: number[][] }): void {
  frames.push(frame);
  state.animating = true;
  const tick = () => {
    const next = frames.shift();
    if (next) {
      drawChannels(next);
      drawing = setTimeout(tick, frameMs());
    } else {
      drawing = null;
      state.animating = false;
    }
  };
  drawing ??= setTimeout(tick, 0);
}

function drawResults(rows: readonly MethodSummary[]): void {
  const parallel = rows.filter((r) => r.history.length > 0);
  $('#residuals').replaceChildren(...(parallel.length > 0 ? [residualPlot(parallel)] : []));
  const fmt = (x: number | null, digits = 3) => (x === null || !Number.isFinite(x) ? '–' : x.toPrecision(digits));
  /** Times with one decimal (or none past 10 s), grouped. */
  const time = (x: number) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: x < 10_000 ? 1 : 0 }) : '–');
  const table = document.createElement('table');
  table.innerHTML = `<thead><tr><th>method</th><th>time (ms)</th><th>µs/step</th><th>iterations</th><th>final residual</th><th>converged</th><th>max |Δ| vs sequential</th><th>speed-up</th></tr></thead>`;
  const body = document.createElement('tbody');
  for (const r of rows) {
    const tr = document.createElement('tr');
    const converged = r.error ? `no — ${r.error}` : r.converged ? 'yes' : `no (${r.reason})`;
    const cells = [r.ran ? `${r.method} (${r.ran.join(' → ')})` : r.method, time(r.ms), time(r.usPerStep), String(r.iterations), fmt(r.residual), converged, fmt(r.maxAbsDiffVsSequential), r.speedup === null ? '–' : `${fmt(r.speedup)}×`];
    cells.forEach((text, i) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (i === 5 && !r.converged) td.className = 'bad';
      tr.append(td);
    });
    body.append(tr);
  }
  table.append(body);
  $('#table').replaceChildren(...(rows.length > 0 ? [table] : []));
  $('#speedup').replaceChildren(...(rows.some((r) => r.speedup !== null) ? [speedupPlot(rows)] : []));
}

// ---- a run -------------------------------------------------------------------------------------

let controller: AbortController | null = null;

function onEvent(e: RunEvent): void {
  if (e.kind === 'reference') {
    reference = e;
    drawChannels();
  } else if (e.kind === 'iterate') queueFrame({ label: `${e.method}, iteration ${e.iteration} (residual ${e.residual.toPrecision(3)})`, method: e.method, channels: e.channels });
  else if (e.kind === 'progress') {
    $('#progress').textContent = e.fraction !== undefined ? `${e.method}: ${(100 * e.fraction).toFixed(0)} %` : `${e.method}: iteration ${e.iteration}, residual ${e.residual.toPrecision(3)}`;
  } else {
    state.methods = [...state.methods, e.summary];
    drawResults(state.methods);
  }
}

async function run(): Promise<void> {
  if (state.status === 'running') return;
  const { settings, problems } = readForm();
  if (problems.length > 0) {
    showMessage(`Not run — fix these settings:\n${problems.join('\n')}`);
    return;
  }
  state.settings = settings;
  history.replaceState(null, '', `${location.pathname}${settingsQuery(settings)}`);
  state.status = 'running';
  state.methods = [];
  showMessage(null);
  reference = null;
  frames.length = 0;
  if (drawing !== null) clearTimeout(drawing);
  drawing = null;
  state.animating = false;
  $('#channels').replaceChildren();
  drawResults([]);
  const runButton = $<HTMLButtonElement>('#run');
  const cancelButton = $<HTMLButtonElement>('#cancel');
  runButton.disabled = true;
  cancelButton.disabled = false;
  controller = new AbortController();
  try {
    state.problem = describeSettings(settings);
    $('#problem').textContent = state.problem;
    const active = await engineFor(settings.backend);
    const rows = await active.run(settings, onEvent, controller.signal);
    state.methods = rows;
    drawResults(rows);
    state.status = 'done';
    $('#progress').textContent = 'done';
  } catch (err) {
    const e = err as Error;
    state.status = controller.signal.aborted ? 'idle' : 'error';
    showMessage(controller.signal.aborted ? 'Cancelled.' : `The run failed — ${e.name}: ${e.message}`);
    $('#progress').textContent = controller.signal.aborted ? 'cancelled' : 'failed';
  } finally {
    controller = null;
    runButton.disabled = false;
    cancelButton.disabled = true;
  }
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  void run();
});
$('#cancel').addEventListener('click', () => state.cancel());

writeForm(state.settings);
if (state.problems.length > 0) showMessage(`Some settings in the address were not understood and were reset to their defaults:\n${state.problems.join('\n')}`);
// Show where runs will execute before the first run.
engineFor(state.settings.backend).then(
  () => {
    if (state.settings.run && state.problems.length === 0) void run();
  },
  (err: Error) => {
    state.status = 'error';
    showMessage(`No backend: ${err.message}`);
  },
);
