/**
 * `pnpm check:packages` — what every published package must pass before `changeset publish`:
 * its manifest fields, a pnpm-packed tarball (built by `prepack`) with dist/, LICENSE and no
 * `workspace:` ranges, publint (strict) and arethetypeswrong (profile {@link ATTW_PROFILE}).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ATTW_PROFILE, attwProblems, manifestProblems, pack, publicPackages, tarballProblems } from './packages.js';

// The repository root, wherever the command is started from.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const require = createRequire(import.meta.url);
const attwBin = join(dirname(require.resolve('@arethetypeswrong/cli/package.json')), 'dist', 'index.js');
const out = mkdtempSync(join(tmpdir(), 'pelk-pack-'));
let failures = 0;
try {
  for (const pkg of publicPackages(root)) {
    const problems = manifestProblems(root, pkg);
    const tarball = pack(pkg, out);
    problems.push(...(await tarballProblems(tarball)), ...attwProblems(tarball, attwBin));
    const size = `${(statSync(tarball).size / 1024).toFixed(0)} KB packed`;
    if (problems.length === 0) console.log(`ok   ${pkg.name}@${pkg.manifest.version} (${size}; publint strict, attw --profile ${ATTW_PROFILE})`);
    else {
      failures++;
      console.log(`FAIL ${pkg.name}@${pkg.manifest.version} (${size})\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
if (failures > 0) {
  console.log(`${failures} package(s) failed the release checks`);
  process.exitCode = 1;
}
