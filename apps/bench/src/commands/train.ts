/**
 * `pelk train ar-sine`: trains the autoregressive GRU of the ELK paper's stability experiment (Fig. 4)
 * — hidden size 3, packed state `[x, h]`, `x' = μ + softplus(ℓ)·u` — on noisy sine waves, with
 * pelk's own gradients, and writes it as a fixture (a model spec with drivers, initial state and its
 * float64 sequential rollout). Seeded and reproducible: the same options give the same weights.
 *
 * Training is teacher-forced maximum likelihood: the inner GRU reads the observed previous value
 * `x_{t−1}`, the readout of `o_t = h_t + x_{t−1}` gives `μ_t` and `ℓ_t`, and the loss is the mean
 * Gaussian negative log-likelihood of `x_t` with standard deviation `softplus(ℓ_t)`. Each step
 * solves the GRU's trajectory with a pelk method (`evaluate`), computes the cotangent `∂L/∂h` on the
 * host, and takes the GRU's weight gradients from `grad` at that trajectory (the readout's are
 * closed-form); Adam updates everything.
 */
import { fileURLToPath } from 'node:url';
import { CpuBackend } from '@pelk/backend-cpu';
import { type ComputeBackend, evaluate, grad, type Method } from '@pelk/core';
import { ar, gru, mulberry32, readModelSpec } from '@pelk/models';
import { checkOutPath, writeAtomically } from './eval.js';

/** The task and the optimiser; the defaults are the committed model's. */
export interface ArSineOptions {
  /** Seed of the data, the initial weights and the drivers of the written rollout. */
  readonly seed: number;
  /** Adam steps. */
  readonly steps: number;
  /** Sequences per step and their length. */
  readonly batch: number;
  readonly length: number;
  /** Sine period (steps), amplitude and observation noise (standard deviation). */
  readonly period: number;
  readonly amplitude: number;
  readonly noise: number;
  readonly learningRate: number;
  /** Steps of the rollout written with the model (its drivers are standard normal, seeded). */
  readonly rolloutSteps: number;
  /** The forward method of each training step (any method: the gradient is exact at its trajectory). */
  readonly method: Method;
  /** Called every `reportEvery` steps with the loss. */
  readonly onProgress?: (step: number, loss: number) => void;
}

export const AR_SINE_DEFAULTS: Omit<ArSineOptions, 'onProgress'> = {
  seed: 2024,
  steps: 1500,
  batch: 16,
  length: 1000,
  period: 500,
  amplitude: 10,
  noise: 1,
  learningRate: 0.02,
  rolloutSteps: 2000,
  method: 'deer',
};

/** A standard-normal sampler (Box–Muller) over a seeded uniform stream. */
function normal(next: () => number): () => number {
  return () => {
    const u = Math.max(next(), 1e-300);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  };
}

function softplus(v: number): number {
  return v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));
}

/** Adam over a set of flat parameter arrays. */
class Adam {
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private t = 0;
  constructor(
    private readonly params: Float64Array[],
    private readonly rate: number,
  ) {
    this.m = params.map((p) => new Float64Array(p.length));
    this.v = params.map((p) => new Float64Array(p.length));
  }
  step(grads: readonly ArrayLike<number>[]): void {
    this.t++;
    const c1 = 1 - 0.9 ** this.t;
    const c2 = 1 - 0.999 ** this.t;
    this.params.forEach((p, k) => {
      const g = grads[k];
      const m = this.m[k];
      const v = this.v[k];
      for (let i = 0; i < p.length; i++) {
        m[i] = 0.9 * m[i] + 0.1 * g[i];
        v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
        p[i] -= (this.rate * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + 1e-8);
      }
    });
  }
}

/** What {@link trainArSine} returns: the fixture JSON and the loss curve. */
export interface ArSineResult {
  readonly fixture: Record<string, unknown>;
  readonly losses: number[];
  readonly ms: number;
}

/**
 * Trains the AR-GRU and returns its fixture.
 *
 * @example
 * ```ts
 * const { fixture } = await trainArSine(backend, AR_SINE_DEFAULTS);
 * ```
 */
export async function trainArSine(backend: ComputeBackend, o: ArSineOptions): Promise<ArSineResult> {
  const started = performance.now();
  const H = 3;
  const rand = normal(mulberry32(o.seed));
  const init = gru.random({ inputSize: 1, hiddenSize: H, seed: o.seed });
  const spec = init.toSpec() as unknown as { weights: Record<string, number[][] | number[]> };
  const flat = (x: number[][] | number[]) => Float64Array.from(x.flat());
  const W = {
    weight_ih_l0: flat(spec.weights.weight_ih_l0),
    weight_hh_l0: flat(spec.weights.weight_hh_l0),
    bias_ih_l0: flat(spec.weights.bias_ih_l0),
    bias_hh_l0: flat(spec.weights.bias_hh_l0),
  };
  const names = Object.keys(W) as (keyof typeof W)[];
  // Readout [μ; ℓ] = R o + c, started at μ ≈ o·(small) and ℓ at softplus⁻¹(noise).
  const R = Float64Array.from({ length: 2 * H }, () => 0.1 * rand());
  const c = Float64Array.from([0, Math.log(Math.expm1(o.noise))]);
  const adam = new Adam([...names.map((n) => W[n]), R, c], o.learningRate);
  const build = () =>
    gru.torch({
      weight_ih_l0: { data: W.weight_ih_l0, shape: [3 * H, 1] },
      weight_hh_l0: { data: W.weight_hh_l0, shape: [3 * H, H] },
      bias_ih_l0: W.bias_ih_l0,
      bias_hh_l0: W.bias_hh_l0,
    });

  const { batch: B, length: T } = o;
  const losses: number[] = [];
  const data = new Float64Array(B * (T + 1));
  const inputs = new Float64Array(B * T);
  const cot = new Float64Array(B * T * H);
  for (let step = 0; step < o.steps; step++) {
    // Fresh noisy sine waves at random phases.
    for (let b = 0; b < B; b++) {
      const phase = 2 * Math.PI * (0.5 + 0.5 * rand()) * 7.3;
      for (let t = 0; t <= T; t++) data[b * (T + 1) + t] = o.amplitude * Math.sin((2 * Math.PI * t) / o.period + phase) + o.noise * rand();
      for (let t = 0; t < T; t++) inputs[b * T + t] = data[b * (T + 1) + t];
    }
    const cell = build();
    const forward = await evaluate(cell, { data: inputs, shape: [B, T, 1] }, { backend, method: o.method, dtype: 'float64', lyapunov: false });
    try {
      const h = await forward.read();
      // NLL_t = ½((x_t − μ_t)/σ_t)² + log σ_t, σ = softplus(ℓ), o_t = h_t + x_{t−1}; mean over B·T.
      let loss = 0;
      const gR = new Float64Array(2 * H);
      const gc = new Float64Array(2);
      const scale = 1 / (B * T);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          const row = b * T + t;
          const xPrev = inputs[row];
          const target = data[b * (T + 1) + t + 1];
          let mu = c[0];
          let l = c[1];
          for (let k = 0; k < H; k++) {
            const ok = h[row * H + k] + xPrev;
            mu += R[k] * ok;
            l += R[H + k] * ok;
          }
          const sigma = softplus(l);
          const z = (target - mu) / sigma;
          loss += (0.5 * z * z + Math.log(sigma)) * scale;
          const dMu = (-z / sigma) * scale;
          const dL = ((1 - z * z) / sigma) * (1 / (1 + Math.exp(-l))) * scale;
          gc[0] += dMu;
          gc[1] += dL;
          for (let k = 0; k < H; k++) {
            const ok = h[row * H + k] + xPrev;
            gR[k] += dMu * ok;
            gR[H + k] += dL * ok;
            cot[row * H + k] = R[k] * dMu + R[H + k] * dL;
          }
        }
      }
      losses.push(loss);
      const g = await grad(cell, { data: inputs, shape: [B, T, 1] }, { data: cot, shape: [B, T, H] }, { backend, forward, lyapunov: false });
      adam.step([...names.map((n) => g.parameters[n].data), gR, gc]);
    } finally {
      forward.dispose();
    }
    o.onProgress?.(step, losses[losses.length - 1]);
  }

  // The model: the trained GRU inside the ar cell, and a rollout from x_0 = 0, h_0 = 0.
  const model = ar({ inner: build(), readout: { weight: [Array.from(R.subarray(0, H)), Array.from(R.subarray(H))], bias: Array.from(c), skip: true }, noise: 'softplus' });
  const drivers = Array.from({ length: o.rolloutSteps }, () => rand());
  const initialState = [0, 0, 0, 0];
  const rollout = await evaluate(model, { data: Float64Array.from(drivers), shape: [o.rolloutSteps, 1] }, { backend, method: 'sequential', dtype: 'float64', initialState, lyapunov: false });
  const states = (await rollout.toArray()) as number[][];
  rollout.dispose();
  const { onProgress: _, ...task } = o;
  return {
    fixture: {
      name: 'argru-sine-pelk',
      oracle: `pelk sequential evaluation, float64 (CpuBackend); model trained by \`pnpm pelk train ar-sine\` with pelk's own gradients (${JSON.stringify(task)}; final mean NLL ${losses[losses.length - 1].toFixed(4)})`,
      cell: model.toSpec(),
      stateLayout: '[x, h]',
      steps: o.rolloutSteps,
      inputs: null,
      drivers,
      initialState,
      states,
    },
    losses,
    ms: performance.now() - started,
  };
}

/** One method's run on the trained model's rollout (see {@link stabilityOf}). */
export interface StabilityRow {
  readonly method: Method;
  readonly iterations: number;
  readonly converged: boolean;
  readonly reason: string;
  /** The largest residual over the iterations (DEER's overflow shows here and in `clipped`). */
  readonly maxResidual: number;
  /** Values clipped to ±clip (1e8) over the run: the iterates overflowed. */
  readonly clipped: number;
  readonly ms: number;
}

/**
 * The paper's phenomenon on a trained model: DEER, ELK, quasi-DEER and quasi-ELK on its rollout
 * (float64, iteration cap T + 1), with the iterations each needed and whether its iterates overflowed.
 */
export async function stabilityOf(backend: ComputeBackend, fixture: Record<string, unknown>): Promise<StabilityRow[]> {
  const spec = readModelSpec(fixture);
  const rows: StabilityRow[] = [];
  for (const method of ['deer', 'elk', 'quasi-deer', 'quasi-elk'] as const) {
    const result = await evaluate(spec.cell, spec.inputs, { backend, method, dtype: 'float64', initialState: spec.initialState ?? undefined, lyapunov: false });
    rows.push({
      method,
      iterations: result.iterations,
      converged: result.converged,
      reason: result.reason,
      maxResidual: result.history.reduce((m, h) => Math.max(m, h.residual), 0),
      clipped: result.diagnostics.clippedValues,
      ms: result.diagnostics.elapsedMs,
    });
    result.dispose();
  }
  return rows;
}

/** Where `pnpm pelk train ar-sine` writes by default: the conformance package's shipped fixtures. */
export const DEFAULT_AR_SINE_OUT = fileURLToPath(new URL('../../../../packages/conformance/fixtures/argru-sine-pelk.json', import.meta.url));

/** Options of {@link runTrainArSine}, as parsed from the command line. */
export interface TrainCommandOptions {
  readonly out: string;
  readonly seed: number;
  readonly steps: number;
  readonly batch: number;
  readonly length: number;
  /** Receives progress lines (every 50 steps). */
  readonly progress?: (line: string) => void;
}

/** The summary of `pelk train ar-sine`. */
export interface TrainSummary {
  readonly out: string;
  readonly seconds: number;
  readonly firstLoss: number;
  readonly finalLoss: number;
  readonly stability: StabilityRow[];
  /** Human-readable form. */
  readonly text: string;
}

/**
 * Runs `pelk train ar-sine`: trains on the CPU backend (float64), writes the fixture, and measures
 * the stability phenomenon on it.
 */
export async function runTrainArSine(o: TrainCommandOptions): Promise<TrainSummary> {
  checkOutPath(o.out, ['.json']);
  const backend = new CpuBackend();
  const options: ArSineOptions = {
    ...AR_SINE_DEFAULTS,
    seed: o.seed,
    steps: o.steps,
    batch: o.batch,
    length: o.length,
    onProgress: (step, loss) => {
      if (step % 50 === 0 || step === o.steps - 1) o.progress?.(`step ${step + 1}/${o.steps}: mean NLL ${loss.toFixed(4)}`);
    },
  };
  const trained = await trainArSine(backend, options);
  writeAtomically(o.out, `${JSON.stringify(trained.fixture)}\n`);
  const stability = await stabilityOf(backend, trained.fixture);
  const seconds = Math.round(trained.ms) / 1000;
  const text = [
    `trained in ${seconds.toFixed(1)} s (${o.steps} Adam steps): mean NLL ${trained.losses[0].toFixed(4)} → ${trained.losses[trained.losses.length - 1].toFixed(4)}`,
    `wrote ${o.out}`,
    `on its ${AR_SINE_DEFAULTS.rolloutSteps}-step rollout (float64):`,
    ...stability.map(
      (r) =>
        `  ${r.method.padEnd(10)} ${String(r.iterations).padStart(5)} iterations, ${r.converged ? 'converged' : `NOT converged (${r.reason})`}, largest residual ${r.maxResidual.toExponential(2)}, ${r.clipped} values clipped`,
    ),
  ].join('\n');
  return { out: o.out, seconds, firstLoss: trained.losses[0], finalLoss: trained.losses[trained.losses.length - 1], stability, text };
}
