/**
 * The WebGPU backend in a real browser: headless Chromium (the system one, WebGPU on SwiftShader
 * where there is no GPU) runs test/browser/page, which checks the WGSL primitives against float64
 * loops and quasi-DEER / quasi-ELK against the fixtures' oracles. The page runs once, in
 * `beforeAll`; each check is one test.
 *
 * Without Chromium (PELK_CHROMIUM overrides /usr/bin/chromium) or without a WebGPU adapter in the
 * page the suite is skipped with the reason, unless PELK_REQUIRE_WEBGPU=1, which makes that a failure.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPage, FIXTURES_DIR, launchChromium, serveStatic } from '../test/browser/harness.js';
import { PROBE, type ProbeResult, RUN_CHECKS, type RunReport } from '../test/browser/report.js';

const CHROMIUM = process.env.PELK_CHROMIUM ?? '/usr/bin/chromium';
const REQUIRED = process.env.PELK_REQUIRE_WEBGPU === '1';
/** SwiftShader runs every dispatch on the CPU; the whole page takes well under this. */
const RUN_TIMEOUT_MS = 600_000;

type Setup =
  | { readonly kind: 'ready'; readonly page: Page; readonly probe: Extract<ProbeResult, { available: true }> }
  | { readonly kind: 'unavailable'; readonly reason: string }
  | { readonly kind: 'failed'; readonly error: Error };

/** What to undo in afterAll, in reverse order (browser, server, build folder). */
const cleanups: (() => unknown)[] = [];

async function cleanUp(): Promise<void> {
  for (const undo of cleanups.splice(0).reverse()) {
    try {
      await undo();
    } catch (err) {
      console.warn(`browser test clean-up: ${(err as Error).message}`);
    }
  }
}

/** Calls a function the page installed on `window`. */
function callPage<T>(page: Page, name: string): Promise<T> {
  return page.evaluate((fn) => (window as unknown as Record<string, () => Promise<unknown>>)[fn](), name) as Promise<T>;
}

/** Builds and serves the page, starts Chromium, opens the page and probes for an adapter. */
async function setUp(): Promise<Setup> {
  if (!existsSync(CHROMIUM)) return { kind: 'unavailable', reason: `no Chromium at ${CHROMIUM} (install it, e.g. apt-get install chromium, or set PELK_CHROMIUM)` };
  const tmp = mkdtempSync(join(tmpdir(), 'pelk-browser-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const dist = join(tmp, 'dist');
  await buildPage(dist, join(tmp, 'vite-cache'));
  const server = await serveStatic({ '/': dist, '/fixtures/': FIXTURES_DIR });
  cleanups.push(() => server.close());
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  try {
    browser = await launchChromium(CHROMIUM);
  } catch (err) {
    return { kind: 'unavailable', reason: `Chromium at ${CHROMIUM} did not start: ${(err as Error).message.split('\n')[0]}` };
  }
  cleanups.push(() => browser.close());
  const page = await browser.newPage();
  // The page's own errors, for debugging a failing check.
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') console.warn(`[chromium ${msg.type()}] ${msg.text()}`);
  });
  page.on('pageerror', (err) => console.warn(`[chromium page error] ${err.message}`));
  await page.goto(`${server.origin}/`);
  await page.waitForFunction((fn) => fn in window, PROBE, { timeout: 60_000 });
  const probe = await callPage<ProbeResult>(page, PROBE);
  if (!probe.available) return { kind: 'unavailable', reason: `no WebGPU in Chromium: ${probe.reason}` };
  return { kind: 'ready', page, probe };
}

const setup: Setup = await setUp().catch((error: Error) => ({ kind: 'failed' as const, error }));

afterAll(cleanUp);

describe('WebGPU backend in headless Chromium', { timeout: RUN_TIMEOUT_MS }, () => {
  if (setup.kind === 'failed') {
    it('builds, serves and opens the page', () => {
      throw setup.error;
    });
    return;
  }
  if (setup.kind === 'unavailable') {
    if (REQUIRED) {
      it('needs WebGPU in Chromium (PELK_REQUIRE_WEBGPU=1)', () => {
        throw new Error(setup.reason);
      });
    } else {
      it.skip(`skipped: ${setup.reason}`, () => {});
    }
    return;
  }

  const { page, probe } = setup;
  let report: RunReport;
  beforeAll(async () => {
    report = await callPage<RunReport>(page, RUN_CHECKS);
    const { vendor, architecture, description } = probe.adapter;
    console.info(`WebGPU adapter: ${[vendor, architecture, description].filter((s) => s).join(' / ')}; backend device: ${report.device}`);
    for (const c of report.checks) console.info(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name} (${Math.round(c.ms)} ms): ${c.detail}`);
  }, RUN_TIMEOUT_MS);

  it('creates the backend on the adapter and destroys it', () => {
    expect(report.error).toBeUndefined();
    expect(report.device).toMatch(/^WebGPU: /);
  });

  for (const name of probe.checks) {
    it(name, () => {
      const check = report.checks.find((c) => c.name === name);
      expect(check, report.error ?? 'the page did not run this check').toBeDefined();
      expect(check!.ok, check!.detail).toBe(true);
    });
  }
});
