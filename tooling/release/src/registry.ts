/**
 * A throwaway npm registry (verdaccio) on the loopback address, for release rehearsals: `@pelk/*`
 * is served only from its own storage (never from npmjs, where another `@pelk/core` may exist);
 * everything else is proxied to the registry this machine is configured with, so peers install.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

export interface LocalRegistry {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  /** Lines for an `.npmrc` that points npm and pnpm at this registry, with a publish token. */
  readonly npmrc: string;
  /** The verdaccio process id (stopped by {@link LocalRegistry.stop}). */
  readonly pid: number;
  /** Stops verdaccio (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
}

/** A port the kernel says is free on 127.0.0.1 (verdaccio then binds it; the window is tiny). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function verdaccioBin(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('verdaccio/package.json')), 'bin', 'verdaccio');
}

async function waitUntilServing(url: string, child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`verdaccio exited with code ${child.exitCode} before serving:\n${output()}`);
    try {
      const response = await fetch(new URL('-/ping', url));
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`verdaccio did not answer ${url}-/ping within ${timeoutMs} ms:\n${output()}`);
}

/** Creates a user through the registry's login endpoint and returns its token (what `npm adduser` does). */
async function createUser(url: string): Promise<string> {
  const name = 'pelk-release';
  const response = await fetch(new URL(`-/user/org.couchdb.user:${name}`, url), {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password: 'rehearsal-only', email: 'release@pelk.invalid' }),
  });
  const body = (await response.json()) as { token?: string; error?: string };
  if (!response.ok || !body.token) throw new Error(`verdaccio refused to create a user: ${response.status} ${body.error ?? ''}`);
  return body.token;
}

/**
 * Starts verdaccio with its storage under `workDir` and returns once it answers.
 * @param upstream the registry to proxy everything but `@pelk/*` to.
 *
 * @example
 * ```ts
 * const registry = await startLocalRegistry('/tmp/rehearsal', 'https://registry.npmjs.org/');
 * try { … } finally { await registry.stop(); }
 * ```
 */
export async function startLocalRegistry(workDir: string, upstream: string): Promise<LocalRegistry> {
  mkdirSync(join(workDir, 'storage'), { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const config = join(workDir, 'config.yaml');
  writeFileSync(
    config,
    [
      `storage: ${JSON.stringify(join(workDir, 'storage'))}`,
      'auth:',
      '  htpasswd:',
      `    file: ${JSON.stringify(join(workDir, 'htpasswd'))}`,
      'uplinks:',
      '  upstream:',
      `    url: ${JSON.stringify(upstream)}`,
      '    timeout: 60s',
      '    max_fails: 5',
      'packages:',
      "  '@pelk/*':",
      '    access: $all',
      '    publish: $authenticated',
      "  '**':",
      '    access: $all',
      '    publish: $authenticated',
      '    proxy: upstream',
      'web:',
      '  enable: false',
      'log: { type: stdout, format: pretty, level: warn }',
      'max_body_size: 200mb',
      '',
    ].join('\n'),
  );
  const child = spawn(process.execPath, [verdaccioBin(), '--config', config, '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid;
  if (pid === undefined) throw new Error('verdaccio did not start (no process id)');
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(pid, 'SIGTERM');
    const killer = setTimeout(() => child.exitCode === null && process.kill(pid, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  };
  try {
    await waitUntilServing(url, child, () => log, 30_000);
    const token = await createUser(url);
    const host = url.replace(/^http:/, '');
    return { url, pid, stop, npmrc: `registry=${url}\n${host}:_authToken=${token}\n` };
  } catch (error) {
    await stop();
    throw error;
  }
}
