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
 * 6. Stops the registry it started (by PID) and removes the folder, on success and on failure.
 *
 * Environment: PELK_REQUIRE_WEBGPU=1 turns "no WebGPU adapter" from a printed skip into a failure;
 * PELK_FIXTURES is passed to the conformance run; PELK_KEEP_REHEARSAL=1 keeps the temporary folder.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BlankProject, type Manager, installBlank, installedPackages, pelkPackages, run } from './blank-projects.js';
import { publicPackages } from './packages.js';
import { startLocalRegistry } from './registry.js';

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
  readonly which: 'cpu' | 'tfjs' | 'webgpu';
  readonly pelk: readonly string[];
  /** Peers from npm, `name@range`. */
  readonly peers: readonly string[];
}

const TARGETS: readonly Target[] = [
  { which: 'cpu', pelk: ['@pelk/core', '@pelk/models', '@pelk/backend-cpu'], peers: [] },
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

function smoke(project: BlankProject, target: Target): void {
  const env = { ...process.env };
  for (const [script, label] of [
    ['eval.mjs', 'import'],
    ['require.cjs', 'require'],
  ] as const) {
    try {
      const out = run(process.execPath, [script, target.which], project.dir, env).trim().split('\n').pop();
      log(`  smoke (${label}): ${out}`);
    } catch (error) {
      const text = String((error as Error).message);
      const noAdapter = target.which === 'webgpu' && /BackendUnavailableError|no WebGPU adapter|adapter/i.test(text);
      if (noAdapter && process.env.PELK_REQUIRE_WEBGPU !== '1') {
        log(`  smoke (${label}): SKIPPED — no WebGPU adapter on this machine (set PELK_REQUIRE_WEBGPU=1 to fail instead): ${text.split('\n').find((l) => /adapter/i.test(l))}`);
        return;
      }
      throw error;
    }
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'pelk-release-rehearsal-'));
  const repo = join(work, 'repo');
  let registry: Awaited<ReturnType<typeof startLocalRegistry>> | undefined;
  let failed = false;
  try {
    copyWorkingTree(repo);
    run('pnpm', ['install', '--frozen-lockfile', '--offline', '--reporter=silent'], repo);
    log(`working tree copied to ${repo} and installed offline`);

    // A snapshot needs a changeset; after a real release there may be none left.
    const packages = publicPackages(repo);
    writeFileSync(join(repo, '.changeset', 'release-rehearsal.md'), `---\n${packages.map((p) => `"${p.name}": patch`).join('\n')}\n---\n\nRelease rehearsal.\n`);
    run('pnpm', ['exec', 'changeset', 'version', '--snapshot', 'rehearsal'], repo);
    const versioned = publicPackages(repo);
    const version = versioned[0]!.manifest.version;
    if (versioned.some((p) => p.manifest.version !== version)) throw new Error(`versions are not in lockstep: ${versioned.map((p) => `${p.name}@${p.manifest.version}`).join(', ')}`);
    for (const p of versioned) {
      const changelog = join(p.dir, 'CHANGELOG.md');
      if (!existsSync(changelog) || !readFileSync(changelog, 'utf8').includes(`## ${version}`)) throw new Error(`${p.name}: changeset version wrote no CHANGELOG.md entry for ${version}`);
    }
    log(`snapshot version ${version} (${versioned.length} packages, CHANGELOG.md entries written)`);

    const upstream = run('npm', ['config', 'get', 'registry'], repo).trim() || 'https://registry.npmjs.org/';
    registry = await startLocalRegistry(join(work, 'registry'), upstream);
    // Interrupted (Ctrl-C, a CI timeout's SIGTERM): `finally` would not run, so stop the registry here.
    const running = registry;
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        try {
          process.kill(running.pid, 'SIGKILL');
        } catch {
          // already gone
        }
        if (process.env.PELK_KEEP_REHEARSAL !== '1') rmSync(work, { recursive: true, force: true });
        console.error(`release rehearsal interrupted (${signal}); verdaccio (pid ${running.pid}) stopped`);
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
    }
    log(`verdaccio (pid ${registry.pid}) serving ${registry.url}, proxying ${upstream} for everything but @pelk/*`);
    writeFileSync(join(repo, '.npmrc'), registry.npmrc);

    run('pnpm', ['build'], repo);
    log('built');
    process.stdout.write(run('pnpm', ['--silent', 'check:packages'], repo));
    log('packages checked');
    const published = run('pnpm', ['exec', 'changeset', 'publish', '--no-git-tag'], repo);
    const names = versioned.map((p) => p.name);
    for (const name of names) {
      // npm itself asks (this process's fetch would reuse a keep-alive socket the registry closed while we waited).
      const found = run('npm', ['view', `${name}@${version}`, 'version'], repo).trim();
      if (found !== version) throw new Error(`${name}@${version} is not on the local registry after changeset publish:\n${published}`);
    }
    log(`published ${names.map((n) => `${n}@${version}`).join(', ')}`);

    const deps = new Map(versioned.map((p) => [p.name, Object.keys((p.manifest.dependencies ?? {}) as object).filter((d) => d.startsWith('@pelk/'))]));
    const blank = join(work, 'blank');
    for (const target of TARGETS) {
      const allowed = dependencyClosure(target.pelk, deps);
      for (const manager of ['npm', 'pnpm'] as Manager[]) {
        const specs = [...target.pelk.map((n) => `${n}@${version}`), ...target.peers];
        const project = installBlank(blank, target.which, manager, registry.npmrc, specs, smokeDir);
        const installed = installedPackages(project);
        const pelk = pelkPackages(installed);
        log(`${target.which} with ${manager}: installed ${installed.length} packages; @pelk: ${pelk.join(', ')}; asked for ${specs.join(' ')}`);
        log(`  all: ${installed.join(' ')}`);
        const extra = pelk.filter((n) => !allowed.includes(n));
        const missing = target.pelk.filter((n) => !pelk.includes(n));
        if (extra.length || missing.length) throw new Error(`${target.which} (${manager}): unexpected @pelk packages ${extra.join(', ') || '—'}; missing ${missing.join(', ') || '—'}`);
        smoke(project, target);
      }
    }

    const conformanceSpecs = [`@pelk/conformance@${version}`, `@pelk/backend-cpu@${version}`, 'vitest@^4.1.0'];
    const conformance = installBlank(blank, 'conformance', 'npm', registry.npmrc, conformanceSpecs, smokeDir);
    writeFileSync(
      join(conformance.dir, 'cpu.conformance.test.js'),
      "import { CpuBackend } from '@pelk/backend-cpu';\nimport { defineConformanceSuite } from '@pelk/conformance';\n\ndefineConformanceSuite({ name: 'cpu', createBackend: () => new CpuBackend() });\n",
    );
    const fixtures = process.env.PELK_FIXTURES ?? (existsSync(join(repoRoot, '..', 'shared', 'fixtures')) ? join(repoRoot, '..', 'shared', 'fixtures') : undefined);
    const report = join(conformance.dir, 'report.json');
    const skipsFile = join(conformance.dir, 'skips.jsonl');
    writeFileSync(skipsFile, '');
    const reporters = ['--reporter=dot', '--reporter=json', `--outputFile.json=${report}`, '--reporter=./skips-reporter.mjs'];
    run('npx', ['vitest', 'run', ...reporters], conformance.dir, { ...process.env, NO_COLOR: '1', PELK_SKIPS_FILE: skipsFile, ...(fixtures ? { PELK_FIXTURES: fixtures } : {}) });
    const results = JSON.parse(readFileSync(report, 'utf8')) as VitestReport;
    log(`conformance (cpu, from outside the repository${fixtures ? `, PELK_FIXTURES=${fixtures}` : ''}): ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${results.numPendingTests} skipped`);
    // Every skip must say why: in its title (`… — skipped: reason`) or through ctx.skip(reason).
    const skips = readFileSync(skipsFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { name: string; note: string | null });
    const silent = skips.filter((s) => !s.note && !/skipped: /.test(s.name));
    for (const s of skips) log(`  skipped: ${s.name}${s.note ? ` — ${s.note}` : ''}`);
    if (silent.length > 0) throw new Error(`${silent.length} conformance test(s) skipped without saying why: ${silent.map((s) => s.name).join('; ')}`);
  } catch (error) {
    failed = true;
    console.error(error instanceof Error ? error.message : error);
  } finally {
    if (registry) {
      await registry.stop();
      log(`verdaccio (pid ${registry.pid}) stopped`);
    }
    if (process.env.PELK_KEEP_REHEARSAL === '1') log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
  log(failed ? 'release rehearsal FAILED' : 'release rehearsal passed');
  process.exitCode = failed ? 1 : 0;
}

await main();
