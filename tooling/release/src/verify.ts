/**
 * `pnpm release:verify` — a release rehearsal that proves a blank project can install pelk.
 *
 * 1. Copies the working tree (tracked and untracked, not ignored files) to a temporary folder and
 *    installs it offline from the pnpm store, so the checkout itself is never modified.
 * 2. Versions a snapshot there (`changeset version --snapshot rehearsal`, lockstep).
 * 3. Starts verdaccio on 127.0.0.1 and runs the release there: `pnpm build`, `pnpm check:packages`
 *    (manifests, tarballs, publint, attw) and `changeset publish` (`pnpm release` minus the
 *    type-check and lint, which CI runs before this).
 * 4. In blank folders installs each backend alone (with @pelk/core, @pelk/models and its peers)
 *    with npm and with pnpm, logs what was installed and fails on any other `@pelk/*` package, then
 *    runs the smoke evaluation against a float64 GRU, by `import` and by `require`.
 * 5. Runs `@pelk/conformance` against `cpu` from a blank project with vitest.
 * 6. Stops the registry it started (by PID) and removes the folder, on success, on failure and on
 *    SIGINT/SIGTERM; the registry also exits by itself if this process dies (registry-server.mjs).
 *
 * Environment: PELK_REQUIRE_WEBGPU=1 turns "no WebGPU adapter" from a printed skip into a failure;
 * PELK_FIXTURES is passed to the conformance run; PELK_KEEP_REHEARSAL=1 keeps the temporary folder.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BlankProject, type Manager, installBlank, installedPackages, pelkPackages } from './blank-projects.js';
import { publicPackages } from './packages.js';
import { CommandError, cleanEnv, killAll, run } from './processes.js';
import { type LocalRegistry, startLocalRegistry } from './registry.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const smokeDir = join(repoRoot, 'tooling', 'release', 'smoke');
const started = performance.now();

function log(message: string): void {
  const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[${seconds} s] ${message}`);
}

/** The working tree as git sees it (tracked + untracked, minus ignored and deleted files). */
function copyWorkingTree(to: string): void {
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: repoRoot, encoding: 'utf8' });
  for (const file of listed.split('\0')) {
    if (!file || !existsSync(join(repoRoot, file))) continue;
    mkdirSync(dirname(join(to, file)), { recursive: true });
    cpSync(join(repoRoot, file), join(to, file));
  }
}

/** The parts of vitest's JSON report read here. */
interface VitestReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  testResults: { assertionResults: { title: string; status: string }[] }[];
}

interface Target {
  /** The smoke tests' backend key (smoke/problem.mjs). */
  readonly which: 'cpu' | 'wasm' | 'tfjs' | 'webgpu';
  readonly pelk: readonly string[];
  /** Peers from npm, `name@range`. */
  readonly peers: readonly string[];
}

const TARGETS: readonly Target[] = [
  { which: 'cpu', pelk: ['@pelk/core', '@pelk/models', '@pelk/backend-cpu'], peers: [] },
  { which: 'wasm', pelk: ['@pelk/core', '@pelk/models', '@pelk/backend-wasm'], peers: [] },
  { which: 'tfjs', pelk: ['@pelk/core', '@pelk/models', '@pelk/backend-tfjs-node'], peers: ['@tensorflow/tfjs-core@^4.22.0', '@tensorflow/tfjs-backend-cpu@^4.22.0'] },
  {
    which: 'webgpu',
    pelk: ['@pelk/core', '@pelk/models', '@pelk/backend-webgpu'],
    peers: ['@tensorflow/tfjs-core@^4.22.0', '@tensorflow/tfjs-backend-webgpu@^4.22.0', 'webgpu@^0.6.2'],
  },
];

/** `@pelk/*` packages each published package depends on (closure), to know what an install may add. */
function dependencyClosure(names: readonly string[], deps: ReadonlyMap<string, readonly string[]>): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    for (const d of deps.get(name) ?? []) visit(d);
  };
  names.forEach(visit);
  return [...seen].sort();
}

async function smoke(project: BlankProject, target: Target): Promise<void> {
  for (const [script, label] of [
    ['eval.mjs', 'import'],
    ['require.cjs', 'require'],
  ] as const) {
    try {
      const out = await run(process.execPath, [script, target.which], project.dir, { env: cleanEnv(), timeoutMs: 120_000 });
      log(`  smoke (${label}): ${out.trim().split('\n').pop()}`);
    } catch (error) {
      // Only the backend's own "no WebGPU adapter" error (on stderr) is a skip; anything else fails.
      const stderr = error instanceof CommandError ? error.stderr : '';
      const noAdapter = target.which === 'webgpu' && stderr.split('\n').find((l) => l.includes('no WebGPU adapter'));
      if (noAdapter && process.env.PELK_REQUIRE_WEBGPU !== '1') {
        log(`  smoke (${label}): SKIPPED — this machine has no WebGPU adapter (PELK_REQUIRE_WEBGPU=1 makes that a failure): ${noAdapter.trim()}`);
        return;
      }
      throw error;
    }
  }
}

/** `PELK_FIXTURES` with each folder made absolute (the conformance run's working directory differs). */
function absoluteFixturePaths(): string | undefined {
  const given = process.env.PELK_FIXTURES;
  if (given) {
    return given
      .split(delimiter)
      .filter((p) => p.trim() !== '')
      .map((p) => resolve(p))
      .join(delimiter);
  }
  const shared = join(repoRoot, '..', 'shared', 'fixtures');
  return existsSync(shared) ? shared : undefined;
}

async function rehearse(work: string, onRegistry: (registry: LocalRegistry) => void): Promise<void> {
  const repo = join(work, 'repo');
  copyWorkingTree(repo);
  // The checkout's store: pnpm picks a store per filesystem, and the temporary folder may be on another one.
  const store = (await run('pnpm', ['store', 'path'], repoRoot)).trim();
  await run('pnpm', ['install', '--frozen-lockfile', '--offline', '--reporter=silent', `--store-dir=${store}`], repo);
  log(`working tree copied to ${repo} and installed offline from ${store}`);

  // A snapshot needs a changeset; after a real release there may be none left.
  const packages = publicPackages(repo);
  writeFileSync(join(repo, '.changeset', 'release-rehearsal.md'), `---\n${packages.map((p) => `"${p.name}": patch`).join('\n')}\n---\n\nRelease rehearsal.\n`);
  await run('pnpm', ['exec', 'changeset', 'version', '--snapshot', 'rehearsal'], repo);
  const versioned = publicPackages(repo);
  const version = versioned[0]!.manifest.version;
  if (versioned.some((p) => p.manifest.version !== version)) throw new Error(`versions are not in lockstep: ${versioned.map((p) => `${p.name}@${p.manifest.version}`).join(', ')}`);
  for (const p of versioned) {
    const changelog = join(p.dir, 'CHANGELOG.md');
    if (!existsSync(changelog) || !readFileSync(changelog, 'utf8').includes(`## ${version}`)) throw new Error(`${p.name}: changeset version wrote no CHANGELOG.md entry for ${version}`);
  }
  log(`snapshot version ${version} (${versioned.length} packages, CHANGELOG.md entries written)`);

  const upstream = (await run('npm', ['config', 'get', 'registry'], repoRoot, { env: cleanEnv() })).trim() || 'https://registry.npmjs.org/';
  const registry = await startLocalRegistry(join(work, 'registry'), upstream);
  onRegistry(registry);
  log(`verdaccio (pid ${registry.pid}) serving ${registry.url}, proxying ${upstream} for everything but @pelk/*`);
  writeFileSync(join(repo, '.npmrc'), registry.npmrc);

  await run('pnpm', ['build'], repo);
  log('built');
  process.stdout.write(await run('pnpm', ['--silent', 'check:packages'], repo));
  log('packages checked');
  const published = await run('pnpm', ['exec', 'changeset', 'publish', '--no-git-tag'], repo);
  const names = versioned.map((p) => p.name);
  for (const name of names) {
    const found = (await run('npm', ['view', `${name}@${version}`, 'version'], repo, { env: cleanEnv() })).trim();
    if (found !== version) throw new Error(`${name}@${version} is not on the local registry after changeset publish:\n${published}`);
  }
  log(`published ${names.map((n) => `${n}@${version}`).join(', ')}`);

  const deps = new Map(versioned.map((p) => [p.name, Object.keys((p.manifest.dependencies ?? {}) as object).filter((d) => d.startsWith('@pelk/'))]));
  const blank = join(work, 'blank');
  for (const target of TARGETS) {
    const allowed = dependencyClosure(target.pelk, deps);
    for (const manager of ['npm', 'pnpm'] as Manager[]) {
      const specs = [...target.pelk.map((n) => `${n}@${version}`), ...target.peers];
      const project = await installBlank(blank, target.which, manager, registry.npmrc, specs, smokeDir);
      const installed = installedPackages(project);
      const pelk = pelkPackages(installed);
      log(`${target.which} with ${manager}: installed ${installed.length} packages; @pelk: ${pelk.join(', ')}; asked for ${specs.join(' ')}`);
      log(`  all: ${installed.join(' ')}`);
      const extra = pelk.filter((n) => !allowed.includes(n));
      const missing = target.pelk.filter((n) => !pelk.includes(n));
      if (extra.length || missing.length) throw new Error(`${target.which} (${manager}): unexpected @pelk packages ${extra.join(', ') || '—'}; missing ${missing.join(', ') || '—'}`);
      // The README promises that core + models + cpu is 3 packages and nothing else.
      if (target.which === 'cpu' && installed.length !== 3) throw new Error(`cpu (${manager}): expected exactly 3 packages, installed ${installed.join(', ')}`);
      await smoke(project, target);
    }
  }

  const conformanceSpecs = [`@pelk/conformance@${version}`, `@pelk/backend-cpu@${version}`, 'vitest@^4.1.0'];
  const conformance = await installBlank(blank, 'conformance', 'npm', registry.npmrc, conformanceSpecs, smokeDir);
  writeFileSync(
    join(conformance.dir, 'cpu.conformance.test.js'),
    "import { CpuBackend } from '@pelk/backend-cpu';\nimport { defineConformanceSuite } from '@pelk/conformance';\n\ndefineConformanceSuite({ name: 'cpu', createBackend: () => new CpuBackend() });\n",
  );
  const fixtures = absoluteFixturePaths();
  const report = join(conformance.dir, 'report.json');
  const skipsFile = join(conformance.dir, 'skips.jsonl');
  writeFileSync(skipsFile, '');
  const reporters = ['--reporter=dot', '--reporter=json', `--outputFile.json=${report}`, '--reporter=./skips-reporter.mjs'];
  await run('npx', ['vitest', 'run', ...reporters], conformance.dir, {
    env: cleanEnv({ NO_COLOR: '1', PELK_SKIPS_FILE: skipsFile, ...(fixtures ? { PELK_FIXTURES: fixtures } : {}) }),
    timeoutMs: 10 * 60_000,
  });
  const results = JSON.parse(readFileSync(report, 'utf8')) as VitestReport;
  log(`conformance (cpu, from outside the repository${fixtures ? `, PELK_FIXTURES=${fixtures}` : ''}): ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${results.numPendingTests} skipped`);
  // Every skip must say why: in its title (`… — skipped: reason`) or through ctx.skip(reason).
  const skips = readFileSync(skipsFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { name: string; note: string | null });
  for (const s of skips) log(`  skipped: ${s.name}${s.note ? ` — ${s.note}` : ''}`);
  if (results.numPassedTests === 0) throw new Error('the conformance suite ran no test');
  if (skips.length !== results.numPendingTests) throw new Error(`the skip reporter saw ${skips.length} skips, vitest counted ${results.numPendingTests}`);
  const silent = skips.filter((s) => !s.note && !/skipped: /.test(s.name));
  if (silent.length > 0) throw new Error(`${silent.length} conformance test(s) skipped without saying why: ${silent.map((s) => s.name).join('; ')}`);
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'pelk-release-rehearsal-'));
  let registry: LocalRegistry | undefined;
  const cleanUp = () => {
    killAll();
    registry?.kill();
    if (process.env.PELK_KEEP_REHEARSAL === '1') log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  };
  // Interrupted (Ctrl-C, a CI timeout's SIGTERM): stop every command, the registry and the folder.
  // The commands run asynchronously, so this runs at once, whatever step is under way.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanUp();
      console.error(`release rehearsal interrupted (${signal}); commands and verdaccio killed`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  let failed = false;
  try {
    await rehearse(work, (r) => {
      registry = r;
    });
  } catch (error) {
    failed = true;
    console.error(error instanceof Error ? error.message : error);
    if (registry) console.error(`verdaccio's log (last lines, ${registry.logFile}):\n${readFileSync(registry.logFile, 'utf8').split('\n').slice(-30).join('\n')}`);
  } finally {
    if (registry) {
      await registry.stop();
      log(`verdaccio (pid ${registry.pid}) stopped`);
    }
    cleanUp();
  }
  log(failed ? 'release rehearsal FAILED' : 'release rehearsal passed');
  process.exitCode = failed ? 1 : 0;
}

await main();
