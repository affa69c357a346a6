/**
 * The WebAssembly backend in a real browser: headless Chromium (the system one; PELK_CHROMIUM
 * overrides /usr/bin/chromium) runs test/browser/page, built with vite from source, which evaluates
 * the shipped fixtures with every method on the page's main thread (one thread), and — the page
 * being cross-origin isolated — in a Web Worker on two threads. Without Chromium the suite is
 * skipped with the reason. The page and server helpers are the WebGPU browser test's.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURES_DIR, buildPage, launchChromium, serveStatic } from '../../backend-webgpu/test/browser/harness.js';

const CHROMIUM = process.env.PELK_CHROMIUM ?? '/usr/bin/chromium';
const PAGE_DIR = fileURLToPath(new URL('../test/browser/page/', import.meta.url));
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const undo of cleanups.splice(0).reverse()) await undo();
});

const missing = existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (install it, e.g. apt-get install chromium, or set PELK_CHROMIUM)`;

describe('WebAssembly backend in headless Chromium', { timeout: 300_000 }, () => {
  it.skipIf(missing !== undefined)(
    missing
      ? `every method reproduces the fixtures on a page (one thread) and in a Web Worker (two threads) — skipped: ${missing}`
      : 'every method reproduces the GRU and LSTM fixtures on a page, one thread, more threads refused there, named; a Web Worker runs two threads',
    async () => {
      const tmp = mkdtempSync(join(tmpdir(), 'pelk-wasm-browser-'));
      cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
      await buildPage(join(tmp, 'dist'), join(tmp, 'vite-cache'), PAGE_DIR);
      // Cross-origin isolated, so that a Web Worker can share WebAssembly memory with its own workers.
      const isolation = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
      const server = await serveStatic({ '/': join(tmp, 'dist'), '/fixtures/': FIXTURES_DIR }, isolation);
      cleanups.push(() => server.close());
      const browser = await launchChromium(CHROMIUM);
      cleanups.push(() => browser.close());
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      await page.goto(`${server.origin}/`);
      await page.waitForFunction(() => '__pelkWasmChecks' in window, undefined, { timeout: 60_000 });
      const report = (await page.evaluate(() => (window as unknown as { __pelkWasmChecks: () => Promise<unknown> }).__pelkWasmChecks())) as {
        threads: number;
        device: string;
        checks: { name: string; ok: boolean; detail: string }[];
      };
      expect(errors).toEqual([]);
      expect(report.threads).toBe(1);
      expect(report.device).toMatch(/^WebAssembly SIMD \(128-bit\), 1 thread/);
      expect(report.checks).toHaveLength(21);
      for (const c of report.checks) expect(c.ok, `${c.name}: ${c.detail}`).toBe(true);
      // In a Web Worker of the isolated page: 2 threads (Web Workers over a shared memory).
      expect(await page.evaluate(() => (window as unknown as { __pelkIsolated: () => boolean }).__pelkIsolated())).toBe(true);
      const worker = (await page.evaluate(() => (window as unknown as { __pelkWasmWorkerChecks: () => Promise<unknown> }).__pelkWasmWorkerChecks())) as {
        threads?: number;
        device?: string;
        error?: string;
        checks?: { name: string; ok: boolean; detail: string }[];
      };
      expect(worker.error).toBeUndefined();
      expect(worker.threads).toBe(2);
      expect(worker.device).toMatch(/2 threads/);
      expect(worker.checks).toHaveLength(4);
      for (const c of worker.checks!) expect(c.ok, `${c.name}: ${c.detail}`).toBe(true);
    },
  );
});
