/**
 * The published `@pelk/*` packages and the checks a release runs on each one: the manifest fields
 * users and registries rely on, the packed tarball's contents, publint and arethetypeswrong.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

export interface PublicPackage {
  readonly name: string;
  /** Absolute folder. */
  readonly dir: string;
  readonly manifest: Record<string, unknown> & { name: string; version: string };
}

/** Every non-private package under `packages/`, in folder order. */
export function publicPackages(root: string): PublicPackage[] {
  const dirs = readdirSync(join(root, 'packages'), { withFileTypes: true }).filter((d) => d.isDirectory());
  return dirs
    .map((d) => {
      const dir = join(root, 'packages', d.name);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      return { name: manifest.name as string, dir, manifest };
    })
    .filter((p) => !p.manifest.private);
}

/**
 * The attw profile pelk's packages are checked with. They are ES modules only: Node ≥ 20.19 loads
 * them with `require()` as well (require(esm), through the `default` export condition), but
 * TypeScript's `node16` resolution still calls that "dynamic import only" and `node10` ignores
 * `exports` (so subpaths like `/register` cannot resolve there). `esm-only` skips those two views;
 * every other problem fails the check.
 */
export const ATTW_PROFILE = 'esm-only';

/** Manifest problems: fields a published package must carry, in the form this repository uses. */
export function manifestProblems(root: string, pkg: PublicPackage): string[] {
  const m = pkg.manifest as Record<string, unknown>;
  const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const problems: string[] = [];
  const expect = (ok: boolean, what: string) => {
    if (!ok) problems.push(what);
  };
  expect(m.license === 'MIT', `license: expected 'MIT', received ${JSON.stringify(m.license)}`);
  expect(readFileSync(join(pkg.dir, 'LICENSE'), 'utf8') === readFileSync(join(root, 'LICENSE'), 'utf8'), 'LICENSE: expected a copy of the root LICENSE');
  const repository = m.repository as { url?: string; directory?: string } | undefined;
  expect(typeof repository?.url === 'string' && repository.directory === `packages/${pkg.dir.split(/[\\/]/).pop()}`, 'repository: expected { type, url, directory: packages/<folder> }');
  expect(typeof m.homepage === 'string', 'homepage: missing');
  const engines = m.engines as { node?: string } | undefined;
  expect(engines?.node === rootManifest.engines?.node, `engines.node: expected the root's ${JSON.stringify(rootManifest.engines?.node)}, received ${JSON.stringify(engines?.node)}`);
  expect((m.publishConfig as { access?: string } | undefined)?.access === 'public', "publishConfig.access: expected 'public'");
  expect('sideEffects' in m, 'sideEffects: missing (false, or the files that register backends)');
  const scripts = (m.scripts ?? {}) as Record<string, string>;
  expect(scripts.prepack === 'tsdown', "scripts.prepack: expected 'tsdown' (a pack always builds dist/)");
  expect(scripts.prepublishOnly === 'node ../../tooling/release/publish-guard.mjs', 'scripts.prepublishOnly: expected the publish guard (npm publish would ship workspace: ranges)');
  for (const [subpath, entry] of Object.entries((m.exports ?? {}) as Record<string, unknown>)) {
    if (typeof entry === 'string') {
      expect(subpath === './package.json', `exports['${subpath}']: a bare path has no types; expected { types, default }`);
      continue;
    }
    const conditions = entry as Record<string, unknown>;
    expect(typeof conditions.default === 'string', `exports['${subpath}'].default: missing (require(esm) and bundlers need it)`);
    expect(typeof conditions.types === 'string', `exports['${subpath}'].types: missing`);
  }
  return problems;
}

/** Packs a package with pnpm (running its `prepack`, so dist/ is fresh) and returns the tarball path. */
export function pack(pkg: PublicPackage, destination: string): string {
  const out = execFileSync('pnpm', ['pack', '--pack-destination', destination, '--json'], { cwd: pkg.dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const filename = (JSON.parse(out.slice(out.indexOf('{'))) as { filename: string }).filename;
  return isAbsolute(filename) ? filename : join(destination, filename);
}

/** Problems in a packed tarball: required files, leftover `workspace:` ranges, publint's findings. */
export async function tarballProblems(tarball: string): Promise<string[]> {
  const problems: string[] = [];
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const required of ['package/package.json', 'package/LICENSE', 'package/README.md', 'package/dist/index.js', 'package/dist/index.d.ts']) {
    if (!files.includes(required)) problems.push(`tarball: ${required} missing`);
  }
  const packed = execFileSync('tar', ['-xOzf', tarball, 'package/package.json'], { encoding: 'utf8' });
  if (packed.includes('workspace:')) problems.push('tarball: package.json still has workspace: ranges');
  const bytes = readFileSync(tarball);
  const { messages, pkg: manifest } = await publint({ pack: { tarball: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) }, level: 'suggestion', strict: true });
  for (const message of messages) problems.push(`publint: ${formatMessage(message, manifest) ?? message.code}`);
  return problems;
}

/** Runs arethetypeswrong on a tarball with {@link ATTW_PROFILE}; returns its report when it fails. */
export function attwProblems(tarball: string, attwBin: string): string[] {
  try {
    execFileSync(process.execPath, [attwBin, tarball, '--profile', ATTW_PROFILE, '--format', 'ascii'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return [];
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return [`attw --profile ${ATTW_PROFILE}:\n${e.stdout ?? ''}${e.stderr ?? ''}`];
  }
}
