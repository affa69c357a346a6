/**
 * Node side of the browser test: builds the page with vite (workspace packages from source),
 * serves it and the conformance fixtures on 127.0.0.1, and launches the system Chromium with
 * WebGPU on SwiftShader through playwright-core (no browser download; the network is not needed).
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { build, defaultClientConditions } from 'vite';

const PAGE_DIR = fileURLToPath(new URL('./page/', import.meta.url));

/** The shipped fixtures (gru-torch-small.json, …), served to the page under `/fixtures/`. */
export const FIXTURES_DIR = join(dirname(createRequire(import.meta.url).resolve('@pelk/conformance/package.json')), 'fixtures');

/**
 * Flags that give headless Chromium a WebGPU adapter on SwiftShader (Vulkan on the CPU) where
 * there is no GPU, and keep it off the network.
 */
export const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-webgpu-adapter=swiftshader',
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];

/**
 * Builds a page (default: page/) into `outDir`: one bundle, so nothing is optimised or fetched on
 * demand while the page runs. `cacheDir` keeps vite's scratch files out of the source tree. Other
 * packages' browser tests pass their own page folder (its `index.html` the entry).
 */
export async function buildPage(outDir: string, cacheDir: string, pageDir = PAGE_DIR): Promise<void> {
  await build({
    configFile: false,
    envDir: false,
    root: pageDir,
    publicDir: false,
    cacheDir,
    logLevel: 'warn',
    clearScreen: false,
    resolve: { conditions: ['@pelk/source', ...defaultClientConditions] },
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      // Readable stack traces when a check fails; size does not matter here.
      minify: false,
      modulePreload: { polyfill: false },
      reportCompressedSize: false,
      rolldownOptions: {
        input: { index: join(pageDir, 'index.html') },
        output: { entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
      },
    },
  });
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

/** A static file server on 127.0.0.1 (a secure context, which WebGPU requires). */
export interface StaticServer {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  close(): Promise<void>;
}

/**
 * Serves folders under URL prefixes (`{ '/': dist, '/fixtures/': fixtures }`, longest prefix
 * first) on a free port of 127.0.0.1. `/` serves `index.html`. `headers` go on every response
 * (e.g. COOP/COEP for a cross-origin-isolated page, which SharedArrayBuffer needs).
 */
export async function serveStatic(mounts: Readonly<Record<string, string>>, headers: Readonly<Record<string, string>> = {}): Promise<StaticServer> {
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const prefix = prefixes.find((p) => path.startsWith(p));
    const root = prefix === undefined ? undefined : mounts[prefix];
    const file = root === undefined ? undefined : normalize(join(root, path.slice(prefix!.length) || 'index.html'));
    if (root === undefined || file === undefined || !(file === root || file.startsWith(root.endsWith(sep) ? root : root + sep))) {
      res.writeHead(404).end();
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store', ...headers }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Launches headless Chromium at `executablePath` with {@link CHROMIUM_ARGS} (playwright adds a fresh profile). */
export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, args: CHROMIUM_ARGS, headless: true, timeout: 60_000 });
}
