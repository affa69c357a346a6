/**
 * The trained AR-GRU cases (ELK paper, Fig. 4): ELK and quasi-ELK reach the float64 oracle where
 * DEER and quasi-DEER do not. The fixture carries the ELK authors' released weights, so it is not
 * shipped with this package; the suite looks it up (`fixturePaths`, `PELK_FIXTURES`, the default
 * locations) and, when it is absent, registers the cases as skips whose titles say where it looked
 * and how to point the suite at it. Registered by `defineConformanceSuite` for every dtype.
 */
import { readFileSync } from 'node:fs';
import { ADAPTIVE_DAMPING } from '@pelk/core';
import { readModelSpec } from '@pelk/models';
import { describe, expect, it } from 'vitest';
import type { CertificateContext } from './certificate-cases.js';
import { type FixtureLookup, fixtureSkipReason, loadPelkArGruFixture } from './fixtures.js';
import { maxAbsDiff } from './reference.js';

/** The fixture's file name (FORMAT.md describes it). */
export const AR_GRU_FIXTURE = 'argru-sine-trained.json';

/**
 * On the repository's AR-GRU, DEER has not converged after as many iterations as ELK needed
 * (measured on the CPU backend: DEER 214 / 219, ELK 84, float64 / float32 — see BENCHMARKS.md), and
 * its iterates overflow from its first iteration (quasi-DEER's from its fourth): the cases cap the
 * DEER runs there, which keeps them short on slow backends.
 */
const QUASI_DEER_CAP = 20;

/** What the AR-GRU cases need from the suite (the certificate cases' dtype, runner and methods). */
export interface ArGruContext extends Pick<CertificateContext, 'dtype' | 'run' | 'methods'> {
  /** Where the fixture was found, or where it was looked for (`findFixture(AR_GRU_FIXTURE, …)`). */
  readonly fixture: FixtureLookup;
  /** Set when the cases are skipped in this test tier: why. */
  readonly slow?: string;
}

/** Registers the AR-GRU cases (inside the suite's per-dtype `describe`). */
export function defineArGruCases(ctx: ArGruContext): void {
  const { dtype, run, methods, fixture } = ctx;
  const path = fixture.path;
  // Decided when the tests are collected, so a skip shows its reason in the title (vitest prints
  // skipped titles; a bare `skipIf` would hide why).
  const missing = path === undefined ? fixtureSkipReason(fixture) : ctx.slow;
  // float64: residual 1e-10, states within 1e-8 of the oracle. float32: residual 1e-5; this
  // model amplifies a residual ~300× along its 2,000 steps (it is why DEER blows up on it:
  // measured on cpu, ELK at residual 5.7e-6 is 1.6e-3 from the oracle), so states within 1e-2.
  const arTolerance = dtype === 'float64' ? 1e-10 : 1e-5;
  const arStates = dtype === 'float64' ? 1e-8 : 1e-2;
  /** The spec, its float64 oracle states, and the options both cases start from. */
  const load = () => {
    const spec = readModelSpec(JSON.parse(readFileSync(path!, 'utf8')));
    const oracle = Float64Array.from(spec.states!.flat());
    return { spec, oracle, opts: { initialState: spec.initialState ?? undefined, tolerance: arTolerance } };
  };

  describe('the trained AR-GRU (ELK paper, Fig. 4)', () => {
    const elkTitle = 'ELK (filter, adaptive damping) reaches the oracle where DEER has not converged after 4× as many iterations';
    // Dense ELK runs only where options.methods includes it (WebGPU leaves it out: thousands of
    // small dispatches per iteration on a software GPU; the title of the skip says so).
    if (missing) {
      it.skip(`${elkTitle} — skipped: ${missing}`, () => {});
    } else if (!methods.includes('elk')) {
      it.skip(`${elkTitle} — skipped: 'elk' is not in this backend's options.methods`, () => {});
    } else {
      it(elkTitle, async () => {
        const { spec, oracle, opts } = load();
        const elk = await run(spec.cell, spec.inputs, { ...opts, method: 'elk' });
        expect(elk.result.converged, `${elk.result.reason}, residual ${elk.result.residual}`).toBe(true);
        expect(elk.result.residual).toBeLessThanOrEqual(arTolerance);
        expect(maxAbsDiff(elk.states, oracle)).toBeLessThanOrEqual(arStates);
        const deer = await run(spec.cell, spec.inputs, { ...opts, method: 'deer', maxIterations: 4 * elk.result.iterations });
        expect(deer.result.converged).toBe(false);
        expect(maxAbsDiff(deer.states, oracle)).toBeGreaterThan(1);
      });
    }

    const quasiTitle = "quasi-ELK (adaptive) converges where quasi-DEER does not, damping only after a quasi-DEER step fails; 'auto' runs it";
    if (missing) {
      it.skip(`${quasiTitle} — skipped: ${missing}`, () => {});
    } else {
      it(quasiTitle, async () => {
        const { spec, oracle, opts } = load();
        const quasi = await run(spec.cell, spec.inputs, { ...opts, method: 'quasi-elk' });
        expect(quasi.result.converged, `${quasi.result.reason}, residual ${quasi.result.residual}`).toBe(true);
        expect(quasi.result.residual).toBeLessThanOrEqual(arTolerance);
        expect(maxAbsDiff(quasi.states, oracle)).toBeLessThanOrEqual(dtype === 'float64' ? 1e-7 : arStates);
        const history = quasi.result.history;
        expect(history[0].sigmaSq).toBe(Number.POSITIVE_INFINITY);
        const firstRejected = history.findIndex((h) => h.accepted === false);
        expect(firstRejected).toBeGreaterThanOrEqual(0);
        // Undamped until the first rejected step; damped right after it.
        expect(history.slice(0, firstRejected + 1).every((h) => h.sigmaSq === Number.POSITIVE_INFINITY)).toBe(true);
        expect(history[firstRejected + 1].sigmaSq).toBe(ADAPTIVE_DAMPING.initialSigmaSq);
        const auto = await run(spec.cell, spec.inputs, { ...opts, method: 'auto', allowSequential: false });
        expect(auto.result.converged, `${auto.result.reason}, residual ${auto.result.residual}`).toBe(true);
        expect(auto.result.methods[0].method).toBe('quasi-elk');
        expect(auto.result.methods[0].reason).toMatch(/quasi-DEER steps/);
        expect(maxAbsDiff(auto.states, oracle)).toBeLessThanOrEqual(dtype === 'float64' ? 1e-7 : arStates);
      });
    }
  });
}

/**
 * The AR-GRU the repository trains itself (`pnpm pelk train ar-sine`), shipped with this package:
 * the same phenomenon as the authors' model, measured on it — DEER's iterates overflow (values
 * clipped to ±1e8) and it needs more iterations than ELK, whose damping keeps every iterate bounded;
 * quasi-ELK converges. Registered for every dtype.
 */
export function definePelkArGruCases(ctx: Pick<CertificateContext, 'dtype' | 'run' | 'methods'> & { readonly slow?: string }): void {
  const { dtype, run, methods, slow } = ctx;
  const tolerance = dtype === 'float64' ? 1e-10 : 1e-5;
  // float32: like the authors' model, this one amplifies a residual along its 2,000 steps.
  const statesBound = dtype === 'float64' ? 1e-8 : 1e-2;
  const load = () => {
    const spec = readModelSpec(loadPelkArGruFixture());
    return { spec, oracle: Float64Array.from(spec.states!.flat()), opts: { initialState: spec.initialState ?? undefined, tolerance } };
  };
  describe('the AR-GRU trained by pelk (pnpm pelk train ar-sine)', () => {
    const title = "ELK reaches the oracle with bounded iterates; DEER's iterates overflow and it needs more iterations";
    const quasiTitle = 'quasi-ELK converges to the oracle; quasi-DEER overflows on the way';
    if (slow) {
      it.skip(`${title} — skipped: ${slow}`, () => {});
      it.skip(`${quasiTitle} — skipped: ${slow}`, () => {});
      return;
    }
    if (!methods.includes('elk')) {
      it.skip(`${title} — skipped: 'elk' is not in this backend's options.methods`, () => {});
    } else {
      it(title, async () => {
        const { spec, oracle, opts } = load();
        const elk = await run(spec.cell, spec.inputs, { ...opts, method: 'elk' });
        expect(elk.result.converged, `${elk.result.reason}, residual ${elk.result.residual}`).toBe(true);
        expect(elk.result.diagnostics.clippedValues).toBe(0);
        expect(maxAbsDiff(elk.states, oracle)).toBeLessThanOrEqual(statesBound);
        const deer = await run(spec.cell, spec.inputs, { ...opts, method: 'deer', maxIterations: elk.result.iterations });
        expect(deer.result.diagnostics.clippedValues, 'DEER values clipped').toBeGreaterThan(0);
        expect(deer.result.converged, `DEER after ELK's ${elk.result.iterations} iterations`).toBe(false);
      });
    }
    it(quasiTitle, async () => {
      const { spec, oracle, opts } = load();
      const quasi = await run(spec.cell, spec.inputs, { ...opts, method: 'quasi-elk' });
      expect(quasi.result.converged, `${quasi.result.reason}, residual ${quasi.result.residual}`).toBe(true);
      expect(maxAbsDiff(quasi.states, oracle)).toBeLessThanOrEqual(statesBound);
      const quasiDeer = await run(spec.cell, spec.inputs, { ...opts, method: 'quasi-deer', maxIterations: QUASI_DEER_CAP });
      expect(quasiDeer.result.diagnostics.clippedValues, `quasi-DEER values clipped in its first ${QUASI_DEER_CAP} iterations`).toBeGreaterThan(0);
    });
  });
}
