/**
 * Child processes of the release rehearsal: each command runs asynchronously (so a signal handler
 * can run while it does), in its own process group (so a timeout or an interrupt kills everything
 * it started), with a time limit.
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** Process groups alive now, killed by {@link killAll}. */
const running = new Set<ChildProcess>();

export class CommandError extends Error {
  constructor(
    message: string,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Kill the command (its whole process group) after this many ms. Default 5 minutes. */
  readonly timeoutMs?: number;
}

/**
 * The environment for commands run outside the checkout's package manager: without the
 * `npm_config_*` / `npm_*` variables pnpm sets for the script that runs the rehearsal (they would
 * make npm think pnpm runs it, and carry this workspace's settings into blank projects).
 */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_/i.test(key) && !/^pnpm_/i.test(key)) env[key] = value;
  return { ...env, ...extra };
}

/** Kills a process group (the child and everything it started); ignores groups already gone. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already exited
  }
}

/** Kills every command still running (the interrupt path). */
export function killAll(): void {
  for (const child of running) killGroup(child, 'SIGKILL');
  running.clear();
}

/** Runs a command in `cwd`; resolves with stdout, rejects with a {@link CommandError} carrying both streams. */
export function run(command: string, args: readonly string[], cwd: string, options: RunOptions = {}): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 5 * 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      running.delete(child);
      reject(new CommandError(`\`${command} ${args.join(' ')}\` in ${cwd} could not start: ${error.message}`, stdout, stderr));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      if (code === 0) return resolve(stdout);
      const why = timedOut ? `killed after ${timeoutMs / 1000} s` : signal ? `killed by ${signal}` : `exit ${code}`;
      reject(new CommandError(`\`${command} ${args.join(' ')}\` in ${cwd} failed (${why}):\n${stdout}${stderr}`, stdout, stderr));
    });
  });
}
