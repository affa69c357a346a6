/**
 * The demo in a real browser: the site built with its own vite config, served cross-origin
 * isolated on 127.0.0.1, opened in headless Chromium (the system one; PELK_CHROMIUM overrides
 * /usr/bin/chromium; WebGPU on SwiftShader where there is no GPU). Runs go through the automation
 * contract (URL parameters in, `window.pelkDemo` out). Screenshots land in test-output/.
 *
 * Without Chromium the suite is skipped with the reason; without a WebGPU adapter in the page the
 * WebGPU cases are, unless PELK_REQUIRE_WEBGPU=1, which makes that a failure.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type StaticServer, serveStatic } from '../../../packages/backend-webgpu/test/browser/harness.js';

const CHROMIUM = process.env.PELK_CHROMIUM ?? '/usr/bin/chromium';
const REQUIRED = process.env.PELK_REQUIRE_WEBGPU === '1';
const DEMO_DIR = fileURLToPath(new URL('..', import.meta.url));
const OUTPUT_DIR = join(DEMO_DIR, 'test-output');
const missing = existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (install it, e.g. apt-get install chromium, or set PELK_CHROMIUM)`;

interface Summary {
  status: 'idle' | 'running' | 'done' | 'error';
  backend: string | null;
  device: string | null;
  message: string | null;
  problems: string[];
  framesDrawn: number;
  methods: { method: string; converged: boolean; reason: string; residual: number; maxAbsDiffVsSequential: number | null; iterations: number; dtype: string; error?: string }[];
}

let server: StaticServer | undefined;
let browser: Browser | undefined;
let tmp: string | undefined;
let gpuReason: string | null = null;

beforeAll(async () => {
  if (missing) return;
  tmp = mkdtempSync(join(tmpdir(), 'pelk-demo-'));
  await build({ root: DEMO_DIR, configFile: join(DEMO_DIR, 'vite.config.ts'), logLevel: 'warn', cacheDir: join(tmp, 'vite-cache'), build: { outDir: join(tmp, 'dist'), minify: false } });
  server = await serveStatic({ '/': join(tmp, 'dist') }, { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
  browser = await launchChromium(CHROMIUM);
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const page = await browser.newPage();
  await page.goto(`${server.origin}/`);
  gpuReason = await page.evaluate(async () => {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    if (!gpu) return 'navigator.gpu is missing';
    return (await gpu.requestAdapter()) ? null : 'no adapter';
  });
  await page.close();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Opens the page with `query`, recording console errors and uncaught exceptions. */
async function open(query: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser!.newPage({ viewport: { width: 1180, height: 900 } });
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  await page.goto(`${server!.origin}/${query}`);
  await page.waitForFunction(() => 'pelkDemo' in window, undefined, { timeout: 60_000 });
  return { page, errors };
}

const summary = (page: Page) => page.evaluate(() => JSON.parse(JSON.stringify((window as unknown as { pelkDemo: unknown }).pelkDemo))) as Promise<Summary>;

/** Waits until the page's run has ended (done or error) and returns the summary. */
async function finished(page: Page, timeout = 600_000): Promise<Summary> {
  await page.waitForFunction(() => {
    const s = (window as unknown as { pelkDemo: { status: string; methods: unknown[] } }).pelkDemo.status;
    return s === 'done' || s === 'error';
  }, undefined, { timeout, polling: 250 });
  return summary(page);
}

/**
 * How far a converged method may be from sequential: its residual is at most the default tolerance
 * (1e-7 in float64, 1e-4 in float32) per step, which the dynamics amplify along the trajectory —
 * little for the contractive GRU, by e^{λt} ≈ e^{1.7} ≈ 5.5 for Lorenz-96 at F = 8 over T = 100
 * steps of 0.01 — so 10× the tolerance covers both.
 */
const agreement = (dtype: string) => 10 * (dtype === 'float64' ? 1e-7 : 1e-4);

describe.skipIf(missing !== undefined)(`the demo in headless Chromium${missing ? ` — skipped: ${missing}` : ''}`, { timeout: 900_000 }, () => {
  it('loads without console errors and says which backend and device it runs on', async () => {
    const { page, errors } = await open('');
    await page.waitForFunction(() => (window as unknown as { pelkDemo: { device: string | null } }).pelkDemo.device !== null, undefined, { timeout: 60_000 });
    const s = await summary(page);
    expect(s.status).toBe('idle');
    expect(s.problems).toEqual([]);
    expect(await page.textContent('#engine')).toContain(s.device!);
    expect(errors).toEqual([]);
    await page.close();
  });

  for (const backend of ['webgpu', 'cpu'] as const) {
    for (const model of ['gru', 'lorenz96'] as const) {
      const query = model === 'gru' ? `?model=gru&D=16&T=2000&method=all&backend=${backend}&run=1` : `?model=lorenz96&D=8&T=100&method=all&backend=${backend}&run=1`;
      it(`${backend}: every method on ${model === 'gru' ? 'a GRU (D = 16, T = 2,000)' : 'Lorenz-96 (D = 8, F = 8, T = 100)'} agrees with sequential`, async (ctx) => {
        if (backend === 'webgpu' && gpuReason !== null) {
          if (REQUIRED) throw new Error(`no WebGPU in Chromium: ${gpuReason}`);
          ctx.skip(`no WebGPU in Chromium: ${gpuReason}`);
        }
        const { page, errors } = await open(query);
        const s = await finished(page);
        // The animation trails the run: let it reach the last iterate before the picture.
        await page.waitForFunction(() => !(window as unknown as { pelkDemo: { animating: boolean } }).pelkDemo.animating, undefined, { timeout: 120_000 });
        await page.screenshot({ path: join(OUTPUT_DIR, `${backend}-${model}.png`), fullPage: true });
        expect(s.message, 'message').toBeNull();
        expect(s.status).toBe('done');
        expect(s.backend).toBe(backend === 'webgpu' ? 'webgpu' : 'wasm');
        expect(s.methods.map((m) => m.method)).toEqual(['sequential', 'deer', 'quasi-deer', 'elk', 'quasi-elk', 'auto']);
        // Animated: iterates of the parallel methods were drawn.
        expect((await summary(page)).framesDrawn).toBeGreaterThan(0);
        for (const m of s.methods) {
          console.info(`${backend} ${model} ${m.method}: ${m.iterations} iterations, residual ${m.residual}, max |Δ| ${m.maxAbsDiffVsSequential}`);
          expect(m.error, m.method).toBeUndefined();
          expect(m.converged, `${m.method}: ${m.reason}`).toBe(true);
          expect(m.maxAbsDiffVsSequential!, m.method).toBeLessThanOrEqual(agreement(m.dtype));
        }
        expect(errors).toEqual([]);
        await page.close();
      });
    }
  }

  it('hot GRU on the CPU worker: DEER iterates blow up where ELK damping stays on course', async () => {
    const { page, errors } = await open('?model=hot-gru&method=deer,elk&backend=cpu&run=1');
    const s = await finished(page);
    await page.waitForFunction(() => !(window as unknown as { pelkDemo: { animating: boolean } }).pelkDemo.animating, undefined, { timeout: 300_000 });
    await page.screenshot({ path: join(OUTPUT_DIR, 'cpu-hot-gru.png'), fullPage: true });
    expect(s.status).toBe('done');
    const [deer, elk] = s.methods.filter((m) => m.method !== 'sequential') as (Summary['methods'][number] & { history: { residual: number }[] })[];
    console.info(`hot GRU: DEER ${deer.iterations} iterations (largest residual ${Math.max(...deer.history.map((h) => h.residual)).toExponential(2)}), ELK ${elk.iterations}`);
    expect(deer.converged && elk.converged).toBe(true);
    expect(deer.iterations).toBeGreaterThan(5 * elk.iterations);
    expect(Math.max(...deer.history.map((h) => h.residual))).toBeGreaterThan(1e6);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("the repository's trained AR-GRU on the CPU worker: DEER's iterates overflow, ELK's stay bounded and it needs fewer", async () => {
    const { page, errors } = await open('?model=ar-gru&method=deer,elk&backend=cpu&animate=0&run=1');
    const s = await finished(page);
    await page.screenshot({ path: join(OUTPUT_DIR, 'cpu-ar-gru.png'), fullPage: true });
    expect(s.status).toBe('done');
    const [deer, elk] = s.methods.filter((m) => m.method !== 'sequential') as (Summary['methods'][number] & { history: { residual: number }[] })[];
    const largest = (m: typeof deer) => Math.max(...m.history.map((h) => h.residual));
    console.info(`AR-GRU: DEER ${deer.iterations} iterations (largest residual ${largest(deer).toExponential(2)}), ELK ${elk.iterations} (${largest(elk).toExponential(2)})`);
    expect(deer.converged && elk.converged).toBe(true);
    expect(deer.iterations).toBeGreaterThan(elk.iterations);
    // DEER's iterates reach the clip bound (1e8); ELK's residuals stay many orders of magnitude below.
    expect(largest(deer)).toBeGreaterThan(1e6);
    expect(largest(elk)).toBeLessThan(1e4);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('cancel stops a long run, and the page runs again afterwards', async () => {
    const { page, errors } = await open('?model=lorenz96&D=16&T=20000&method=deer&backend=cpu&animate=0');
    await page.waitForFunction(() => (window as unknown as { pelkDemo: { device: string | null } }).pelkDemo.device !== null, undefined, { timeout: 60_000 });
    await page.click('#run');
    await page.waitForFunction(() => document.querySelector('#progress')?.textContent?.startsWith('deer: iteration'), undefined, { timeout: 300_000 });
    await page.click('#cancel');
    await page.waitForFunction(() => (window as unknown as { pelkDemo: { status: string } }).pelkDemo.status !== 'running', undefined, { timeout: 60_000 });
    const s = await summary(page);
    expect(s.status).toBe('idle');
    expect(s.message).toBe('Cancelled.');
    // Cancel and run again straight away, through the script interface.
    await page.fill('input[name=T]', '200');
    await page.evaluate(() => {
      const demo = (window as unknown as { pelkDemo: { run(): Promise<void>; cancel(): void } }).pelkDemo;
      void demo.run();
      demo.cancel();
      void demo.run();
    });
    expect((await finished(page)).status).toBe('done');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('bad settings in the URL show a readable message and leave the page usable', async () => {
    const { page, errors } = await open('?T=0&D=-1&method=newton&run=1');
    await page.waitForSelector('#message:not([hidden])');
    const text = await page.textContent('#message');
    expect(text).toContain('T: expected an integer from 1 to 100,000,000, got "0"');
    expect(text).toContain('D: expected an integer from 1 to 512, got "-1"');
    expect(text).toContain('method: expected all, or a comma-separated list');
    await page.screenshot({ path: join(OUTPUT_DIR, 'bad-settings.png'), fullPage: true });
    // Not run with bad settings; the defaults are in the form, and a run from there works.
    expect((await summary(page)).status).toBe('idle');
    await page.fill('input[name=T]', '300');
    await page.selectOption('select[name=backend]', 'cpu');
    await page.click('#run');
    const s = await finished(page);
    expect(s.status).toBe('done');
    expect(s.message).toBeNull();
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a T the backend refuses for memory is a readable error, and the page stays usable', async () => {
    // Lorenz-96 has no inputs: the backend, not the page's input generator, refuses this size.
    const { page, errors } = await open('?model=lorenz96&D=512&T=100000000&method=quasi-deer&backend=cpu&run=1');
    const s = await finished(page);
    expect(s.status).toBe('error');
    expect(s.message).toMatch(/^The run failed — \w+Error: .+/);
    console.info(`refused: ${s.message}`);
    await page.screenshot({ path: join(OUTPUT_DIR, 'refused.png'), fullPage: true });
    expect(s.message).toContain('T=100000000, D=512');
    await page.fill('input[name=T]', '200');
    await page.fill('input[name=D]', '8');
    await page.click('#run');
    expect((await finished(page)).status).toBe('done');
    // The page's own limit on generated inputs is a readable refusal too.
    await page.selectOption('select[name=model]', 'gru');
    await page.fill('input[name=T]', '100000000');
    await page.click('#run');
    const refused = await finished(page);
    expect(refused.status).toBe('error');
    expect(refused.message).toContain('RangeError: inputs of B·T·8 = 800,000,000 values are more than this page generates');
    expect(errors).toEqual([]);
    await page.close();
  });
});
