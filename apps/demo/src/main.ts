/**
 * The demo page: settings from the URL and the form, a run on WebGPU or on the CPU backend in a
 * Web Worker, and the pictures. `window.pelkDemo` mirrors the state as plain JSON for tests and
 * scripts (`status`, `settings`, `backend`, `device`, `methods`, `message`), with `run()` and
 * `cancel()`.
 */
import { cancelled, cpuEngine, type Engine, webGpuEngine, webGpuUnavailable } from './engines.js';
import { channelsPlot, residualPlot, speedupPlot } from './plots.js';
import { describeSettings } from './problems.js';
import type { MethodSummary, RunEvent } from './runner.js';
import { type BackendChoice, describeProblem, METHODS, parseSettings, type Settings, settingsQuery } from './settings.js';

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
  /** Iterates drawn since the page opened. */
  framesDrawn: number;
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
  framesDrawn: 0,
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
  const model = field('model').value;
  q.set('model', model);
  // Only the fields the model uses: an empty F must not block a GRU run.
  const keys = model === 'ar-gru' ? ['T', 'B', 'seed'] : ['D', 'T', 'B', 'seed', model === 'lorenz96' ? 'F' : 'gain'];
  for (const key of keys) q.set(key, field(key).value);
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
/** The engine start in flight: starts are serialised, so two never race for the same slot. */
let starting: Promise<unknown> = Promise.resolve();

/** Which engine a choice means here: `auto` is WebGPU when an adapter exists, else the CPU worker. */
let gpuProbe: Promise<string | null> | null = null;

async function resolveKind(choice: BackendChoice): Promise<Engine['kind']> {
  if (choice === 'cpu') return 'cpu';
  // The adapter probe runs once per page, not once per run.
  gpuProbe ??= webGpuUnavailable();
  const why = await gpuProbe;
  if (why === null) return 'webgpu';
  if (choice === 'webgpu') throw new Error(`WebGPU is not available: ${why}. Choose the CPU backend.`);
  return 'cpu';
}

function engineFor(choice: BackendChoice): Promise<Engine> {
  const next = starting.then(
    () => switchTo(choice),
    () => switchTo(choice),
  );
  starting = next.catch(() => undefined);
  return next;
}

async function switchTo(choice: BackendChoice): Promise<Engine> {
  const kind = await resolveKind(choice);
  if (engine?.alive && engine.kind === kind) return engine;
  const old = engine;
  engine = null;
  state.backend = null;
  state.device = null;
  $('#engine').textContent = 'Backend: starting…';
  await old?.dispose();
  try {
    engine = kind === 'cpu' ? await cpuEngine() : await webGpuEngine();
  } catch (err) {
    $('#engine').textContent = `Backend: none — ${(err as Error).message}`;
    throw err;
  }
  state.backend = engine.backend;
  state.device = engine.device;
  $('#engine').textContent = `Backend: ${engine.backend} — ${engine.device}${engine.kind === 'cpu' ? ' (in a Web Worker)' : ''}`;
  return engine;
}

// ---- pictures ----------------------------------------------------------------------------------

let reference: { channels: number[][]; stride: number } | null = null;
/** Iterates waiting to be drawn: one per frame interval, so fast iterations still animate. */
const frames: { label: string; method: string; channels: number[][] }[] = [];
let drawing: ReturnType<typeof setTimeout> | null = null;
/** A frame per 90 ms while the run goes on; once it has ended, the rest play at 20 ms. */
const frameMs = () => (state.status === 'running' ? 90 : 20);
/** At most this many iterates wait; older ones are dropped (the animation skips ahead). */
const MAX_FRAMES = 100;
/** Held while a timed run is on, so drawing does not slow what is being timed. */
let held = false;
const reducedMotion = typeof matchMedia === 'function' && matchMedia('(prefers-reduced-motion: reduce)').matches;

function drawChannels(iterate?: { label: string; method: string; channels: number[][] }): void {
  if (reference) $('#channels').replaceChildren(channelsPlot(reference.channels, reference.stride, iterate));
}

function queueFrame(frame: { label: string; method: string; channels: number[][] }): void {
  // With reduced motion, only the newest iterate is drawn.
  if (reducedMotion) frames.length = 0;
  frames.push(frame);
  if (frames.length > MAX_FRAMES) frames.splice(0, frames.length - MAX_FRAMES);
  state.animating = true;
  const tick = () => {
    if (held) {
      drawing = setTimeout(tick, frameMs());
      return;
    }
    const next = frames.shift();
    if (next) {
      drawChannels(next);
      state.framesDrawn++;
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
  table.innerHTML = `<caption>Each method's timed run (after an animated or warm-up run) against sequential on the same backend</caption><thead><tr><th scope="col">method</th><th scope="col">time (ms)</th><th scope="col">µs/step</th><th scope="col">iterations</th><th scope="col">final residual</th><th scope="col">converged</th><th scope="col">max |Δ| vs sequential</th><th scope="col">speed-up</th></tr></thead>`;
  const body = document.createElement('tbody');
  for (const r of rows) {
    const tr = document.createElement('tr');
    const converged = r.error ? `no — ${r.error}` : r.converged ? 'yes' : `no (${r.reason})`;
    const cells = [r.ran ? `${r.method} (${r.ran.join(' → ')})` : r.method, time(r.ms), r.usPerStep >= 100 ? time(r.usPerStep) : fmt(r.usPerStep), String(r.iterations), fmt(r.residual), converged, fmt(r.maxAbsDiffVsSequential), r.speedup === null ? '–' : `${fmt(r.speedup)}×`];
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
  } else if (e.kind === 'timing') {
    held = e.active;
    $('#progress').textContent = e.active ? `${e.method}: timed run…` : '';
  } else if (e.kind === 'notice') showMessage(e.text);
  else {
    state.methods = [...state.methods, e.summary];
    drawResults(state.methods);
  }
}

let current: Promise<void> | null = null;

/** Starts a run from the form; while one runs, returns it — or, if it was cancelled, runs after it. */
function run(): Promise<void> {
  if (current) return controller?.signal.aborted ? current.then(() => run()) : current;
  const started = runOnce().finally(() => {
    current = null;
  });
  current = started;
  return started;
}

async function runOnce(): Promise<void> {
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
  held = false;
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
    if (controller.signal.aborted) throw cancelled();
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
    held = false;
    runButton.disabled = false;
    cancelButton.disabled = true;
  }
}

// The hot GRU is the GRU at gain 5: the gain field follows the model.
let lastModel = field('model').value;
field('model').addEventListener('change', () => {
  const model = field('model').value;
  if (model === 'hot-gru') field('gain').value = '5';
  else if (lastModel === 'hot-gru' && field('gain').value === '5') field('gain').value = '1';
  lastModel = model;
});

form.addEventListener('submit', (e) => {
  e.preventDefault();
  void run();
});
$('#cancel').addEventListener('click', () => state.cancel());

writeForm(state.settings);
lastModel = state.settings.model;
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
