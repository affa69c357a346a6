/**
 * A throwaway npm registry (verdaccio) on the loopback address, for release rehearsals: `@pelk/*`
 * is served only from its own storage (never from npmjs, where another `@pelk/core` may exist);
 * everything else is proxied to the registry this machine is configured with, so peers install.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LocalRegistry {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  /** Lines for an `.npmrc` that points npm and pnpm at this registry, with a publish token. */
  readonly npmrc: string;
  /** The verdaccio process id (stopped by {@link LocalRegistry.stop}). */
  readonly pid: number;
  /** verdaccio's log file (its stdout and stderr). */
  readonly logFile: string;
  /** Stops verdaccio (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
  /** Kills verdaccio at once (the interrupt path; synchronous). */
  kill(): void;
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

/** Our wrapper around verdaccio's server (it exits with its parent; see registry-server.mjs). */
const SERVER_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', 'registry-server.mjs');

/** The last lines of a log file, for error messages. */
function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitUntilServing(url: string, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`verdaccio exited with code ${child.exitCode} before serving:\n${tail(logFile)}`);
    try {
      const response = await fetch(new URL('-/ping', url), { signal: AbortSignal.timeout(2000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`verdaccio did not answer ${url}-/ping within ${timeoutMs} ms:\n${tail(logFile)}`);
}

/** Creates a user through the registry's login endpoint and returns its token (what `npm adduser` does). */
async function createUser(url: string): Promise<string> {
  const name = 'pelk-release';
  const response = await fetch(new URL(`-/user/org.couchdb.user:${name}`, url), {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password: 'rehearsal-only', email: 'release@pelk.invalid' }),
    signal: AbortSignal.timeout(10_000),
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
  // Output to a file, not a pipe: nothing has to drain it, and it can be shown when a step fails.
  const logFile = join(workDir, 'verdaccio.log');
  const logFd = openSync(logFile, 'a');
  // stdin stays a pipe from this process: the server exits when it closes (we died).
  const child = spawn(process.execPath, [SERVER_SCRIPT, config, String(port)], { stdio: ['pipe', logFd, logFd] });
  closeSync(logFd);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid;
  if (pid === undefined) throw new Error('verdaccio did not start (no process id)');
  const alive = () => child.exitCode === null && child.signalCode === null;
  const kill = () => {
    if (alive()) process.kill(pid, 'SIGKILL');
  };
  const stop = async () => {
    if (!alive()) return;
    process.kill(pid, 'SIGTERM');
    const killer = setTimeout(kill, 5000);
    await exited;
    clearTimeout(killer);
  };
  try {
    await waitUntilServing(url, child, logFile, 30_000);
    const token = await createUser(url);
    const host = url.replace(/^http:/, '');
    // noproxy: a machine-wide HTTP(S)_PROXY must not swallow requests to the loopback registry.
    const npmrc = `registry=${url}\n${host}:_authToken=${token}\nnoproxy=127.0.0.1,localhost\n`;
    return { url, pid, logFile, stop, kill, npmrc };
  } catch (error) {
    await stop();
    throw error;
  }
}
