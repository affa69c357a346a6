/**
 * The demo's settings and their URL form — the automation contract: every control has a query
 * parameter (`?model=gru&D=64&T=10000&method=quasi-deer&backend=webgpu&run=1`), and a bad value
 * is reported with the parameter, what it accepts and what it got, never thrown at the page.
 */
import type { Method } from '@pelk/core';

export const MODELS = ['gru', 'lstm', 'elman', 'hot-gru', 'ar-gru', 'lorenz96'] as const;
export type ModelName = (typeof MODELS)[number];
export const METHODS = ['sequential', 'deer', 'quasi-deer', 'elk', 'quasi-elk', 'auto'] as const satisfies readonly Method[];
export const BACKENDS = ['auto', 'webgpu', 'cpu'] as const;
export type BackendChoice = (typeof BACKENDS)[number];

/** Everything one run needs. */
export interface Settings {
  readonly model: ModelName;
  /** State size. */
  readonly D: number;
  /** Sequence length. */
  readonly T: number;
  /** Batch size. */
  readonly B: number;
  /** Methods to run, in order (sequential always runs first as the reference). */
  readonly methods: readonly Method[];
  readonly backend: BackendChoice;
  /** Convergence tolerance; `undefined`: the dtype's default. */
  readonly tolerance?: number;
  /** Iteration cap; `undefined`: the library's default. */
  readonly maxIterations?: number;
  /** ELK's σ²: adaptive damping or a fixed value. */
  readonly sigmaSq: 'adaptive' | number;
  /** Seed of the weights and inputs. */
  readonly seed: number;
  /** RNN weight scale g: every weight and bias uniform in ±g/√D (1: PyTorch's initialisation; the hot GRU 5). */
  readonly gain: number;
  /** Lorenz-96 forcing F (8: chaotic). */
  readonly forcing: number;
  /** Draw each iterate as it arrives (one extra read-back per iteration; timings come from a second, plain run). */
  readonly animate: boolean;
  /** Start a run as soon as the page opens. */
  readonly run: boolean;
}

/** A setting the page could not accept. */
export interface SettingProblem {
  readonly parameter: string;
  readonly expected: string;
  readonly received: string;
}

export const DEFAULTS: Settings = {
  model: 'gru',
  D: 16,
  T: 2000,
  B: 1,
  methods: ['sequential', 'quasi-deer', 'deer', 'quasi-elk', 'elk'],
  backend: 'auto',
  sigmaSq: 'adaptive',
  seed: 1,
  gain: 1,
  forcing: 8,
  animate: true,
  run: false,
};

/** The state size of the trained AR-GRU (`[x, h]`, hidden size 3). */
export const AR_GRU_STATE_SIZE = 4;

/** The largest sizes the page accepts at all (the backend may refuse smaller ones for memory). */
export const LIMITS = { D: 512, T: 100_000_000, B: 1024 } as const;

/** Formats a problem as one readable sentence. */
export function describeProblem(p: SettingProblem): string {
  return `${p.parameter}: expected ${p.expected}, got ${p.received}`;
}

/**
 * Reads settings from a query string. Unknown parameters are problems too (a typo must not be
 * silently ignored); each bad value falls back to its default so the page stays usable.
 *
 * @example
 * ```ts
 * const { settings, problems } = parseSettings('?model=lstm&D=32&method=quasi-deer,deer');
 * ```
 */
export function parseSettings(query: string | URLSearchParams): { settings: Settings; problems: SettingProblem[] } {
  const params = typeof query === 'string' ? new URLSearchParams(query) : query;
  const problems: SettingProblem[] = [];
  const out: { -readonly [K in keyof Settings]: Settings[K] } = { ...DEFAULTS };
  const bad = (parameter: string, expected: string, received: string) => problems.push({ parameter, expected, received: JSON.stringify(received) });
  const integer = (name: string, lo: number, hi: number): number | undefined => {
    const raw = params.get(name);
    if (raw === null) return undefined;
    const v = Number(raw);
    // Plain decimal digits only (no 0x10, 1e3 or spaces).
    if (!/^-?\d+$/.test(raw) || !Number.isInteger(v) || v < lo || v > hi) {
      bad(name, `an integer from ${lo} to ${hi.toLocaleString('en-US')}`, raw);
      return undefined;
    }
    return v;
  };
  const positive = (name: string): number | undefined => {
    const raw = params.get(name);
    if (raw === null) return undefined;
    const v = Number(raw);
    if (raw.trim() === '' || !(v > 0) || !Number.isFinite(v)) {
      bad(name, 'a positive number', raw);
      return undefined;
    }
    return v;
  };
  const flag = (name: string): boolean | undefined => {
    const raw = params.get(name);
    if (raw === null) return undefined;
    if (raw === '1' || raw === 'true') return true;
    if (raw === '0' || raw === 'false') return false;
    bad(name, '1 or 0', raw);
    return undefined;
  };
  const known = new Set(['model', 'D', 'T', 'B', 'method', 'backend', 'tol', 'maxIter', 'sigma', 'seed', 'gain', 'F', 'animate', 'run']);
  for (const key of params.keys()) if (!known.has(key)) bad(key, `one of the parameters ${[...known].join(', ')}`, key);

  const model = params.get('model');
  if (model !== null) {
    if ((MODELS as readonly string[]).includes(model)) out.model = model as ModelName;
    else bad('model', MODELS.join(' | '), model);
  }
  if (out.model === 'hot-gru') out.gain = 5;
  out.D = integer('D', out.model === 'lorenz96' ? 4 : 1, LIMITS.D) ?? out.D;
  // The trained AR-GRU has its own size: state [x, h], D = 4.
  if (out.model === 'ar-gru') {
    if (params.get('D') !== null && out.D !== AR_GRU_STATE_SIZE) bad('D', `${AR_GRU_STATE_SIZE} (the trained AR-GRU's state size) or nothing`, params.get('D')!);
    out.D = AR_GRU_STATE_SIZE;
  }
  out.T = integer('T', 1, LIMITS.T) ?? out.T;
  out.B = integer('B', 1, LIMITS.B) ?? out.B;
  const method = params.get('method');
  if (method !== null) {
    const names = method === 'all' ? [...METHODS] : [...new Set(method.split(',').map((m) => m.trim()))];
    const unknown = names.filter((m) => !(METHODS as readonly string[]).includes(m));
    if (unknown.length > 0 || names.length === 0) bad('method', `all, or a comma-separated list of ${METHODS.join(', ')}`, method);
    else out.methods = names as Method[];
  }
  const backend = params.get('backend');
  if (backend !== null) {
    if ((BACKENDS as readonly string[]).includes(backend)) out.backend = backend as BackendChoice;
    else bad('backend', BACKENDS.join(' | '), backend);
  }
  out.tolerance = positive('tol');
  out.maxIterations = integer('maxIter', 1, 1_000_000);
  const sigma = params.get('sigma');
  if (sigma !== null && sigma !== 'adaptive') out.sigmaSq = positive('sigma') ?? 'adaptive';
  out.seed = integer('seed', 0, 2 ** 31 - 1) ?? out.seed;
  out.gain = positive('gain') ?? out.gain;
  const F = params.get('F');
  if (F !== null) {
    const v = Number(F);
    if (F.trim() === '' || !Number.isFinite(v)) bad('F', 'a finite number', F);
    else out.forcing = v;
  }
  out.animate = flag('animate') ?? out.animate;
  out.run = flag('run') ?? out.run;
  return { settings: out, problems };
}

/** The query string of `settings` (defaults left out), for the address bar. */
export function settingsQuery(s: Settings): string {
  const p = new URLSearchParams();
  const set = (key: string, value: string, fallback: string) => {
    if (value !== fallback) p.set(key, value);
  };
  set('model', s.model, DEFAULTS.model);
  if (s.model !== 'ar-gru') set('D', String(s.D), String(DEFAULTS.D));
  set('T', String(s.T), String(DEFAULTS.T));
  set('B', String(s.B), String(DEFAULTS.B));
  set('method', s.methods.join(','), DEFAULTS.methods.join(','));
  set('backend', s.backend, DEFAULTS.backend);
  if (s.tolerance !== undefined) p.set('tol', String(s.tolerance));
  if (s.maxIterations !== undefined) p.set('maxIter', String(s.maxIterations));
  set('sigma', String(s.sigmaSq), 'adaptive');
  set('seed', String(s.seed), String(DEFAULTS.seed));
  if (s.model !== 'ar-gru') set('gain', String(s.gain), s.model === 'hot-gru' ? '5' : String(DEFAULTS.gain));
  if (s.model === 'lorenz96') set('F', String(s.forcing), String(DEFAULTS.forcing));
  set('animate', s.animate ? '1' : '0', '1');
  if (s.run) p.set('run', '1');
  const q = p.toString();
  return q ? `?${q}` : '';
}
