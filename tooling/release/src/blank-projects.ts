/**
 * Blank projects for the release rehearsal: a fresh folder with nothing but a package.json and an
 * .npmrc, into which npm or pnpm installs the packages a user would ask for, then the smoke tests
 * (`smoke/`) run with plain `node`.
 */
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanEnv, run } from './processes.js';

export type Manager = 'npm' | 'pnpm';

export interface BlankProject {
  readonly dir: string;
  readonly manager: Manager;
}

/**
 * Makes `<parent>/<label>-<manager>` with a package.json, the registry's .npmrc and the smoke
 * scripts, and installs `specs` (`name@version`) with `manager`.
 */
export async function installBlank(parent: string, label: string, manager: Manager, npmrc: string, specs: readonly string[], smokeDir: string): Promise<BlankProject> {
  const dir = join(parent, `${label}-${manager}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: `blank-${label}`, version: '0.0.0', private: true, type: 'module' }, null, 2)}\n`);
  writeFileSync(join(dir, '.npmrc'), npmrc);
  // pnpm's settings (pnpm-workspace.yaml): a workspace root of its own, so no workspace above us
  // applies; no release-age quarantine for the snapshot we just published; and an allowBuilds
  // decision for Dawn's `webgpu`, whose build script (it only clears a macOS quarantine flag) pnpm
  // ≥ 10 refuses to skip silently (the backend-webgpu README says so).
  if (manager === 'pnpm') writeFileSync(join(dir, 'pnpm-workspace.yaml'), 'packages: []\nminimumReleaseAge: 0\nallowBuilds:\n  webgpu: false\n');
  cpSync(smokeDir, dir, { recursive: true });
  const args = manager === 'npm' ? ['install', '--no-audit', '--no-fund', '--loglevel=error', ...specs] : ['add', '--reporter=silent', ...specs];
  await run(manager, args, dir, { env: cleanEnv() });
  return { dir, manager };
}

/**
 * Every package installed in the project (name@version, sorted): from npm's lockfile, or from the
 * folders of pnpm's virtual store.
 */
export function installedPackages(project: BlankProject): string[] {
  const names = new Set<string>();
  if (project.manager === 'npm') {
    const lock = JSON.parse(readFileSync(join(project.dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (!path) continue;
      names.add(`${path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${entry.version}`);
    }
  } else {
    const store = join(project.dir, 'node_modules', '.pnpm');
    for (const entry of readdirSync(store, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === 'node_modules') continue;
      // `@scope+name@1.2.3_peer@4` → `@scope/name@1.2.3`
      const base = entry.name.replace(/_.*$/, '').replace('+', '/');
      names.add(base);
    }
  }
  return [...names].sort();
}

/** Names (without versions) of the installed `@pelk/*` packages. */
export function pelkPackages(installed: readonly string[]): string[] {
  return installed.filter((p) => p.startsWith('@pelk/')).map((p) => p.slice(0, p.lastIndexOf('@')));
}
