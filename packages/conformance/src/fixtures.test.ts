/**
 * Fixture lookup: the folders a caller names (`fixturePaths`), then `PELK_FIXTURES`, then the
 * default locations; and a missing fixture turns the AR-GRU cases into skips that say why.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RunnerTask, RunnerTestSuite } from 'vitest';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { AR_GRU_FIXTURE, defineArGruCases } from './ar-gru-cases.js';
import { FIXTURE_NAMES, FIXTURES_ENV, findFixture, fixtureSearchPaths, fixtureSkipReason, loadFixture, sharedFixturePath } from './fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'pelk-fixtures-'));
/** Folders: `a` and `b` hold a stand-in AR-GRU file, `empty` holds nothing. */
const a = join(root, 'a');
const b = join(root, 'b');
const empty = join(root, 'empty');
for (const dir of [a, b, empty]) mkdirSync(dir);
writeFileSync(join(a, AR_GRU_FIXTURE), '{}');
writeFileSync(join(b, AR_GRU_FIXTURE), '{}');
writeFileSync(join(b, 'only-in-b.json'), '{}');

afterEach(() => {
  vi.unstubAllEnvs();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('fixture search paths', () => {
  it('searches fixturePaths, then PELK_FIXTURES (path-delimiter separated), then the defaults', () => {
    vi.stubEnv(FIXTURES_ENV, [b, '', empty].join(delimiter));
    const paths = fixtureSearchPaths({ fixturePaths: [a] });
    expect(paths.slice(0, 3)).toEqual([a, b, empty]);
    // The shipped folder comes next, whether this module runs from src/ or from a built dist/.
    expect(paths[3].split(sep).slice(-2)).toEqual(['conformance', 'fixtures']);
    expect(fixtureSearchPaths({ fixturePaths: [a], defaults: false })).toEqual([a, b, empty]);
  });

  it('resolves relative folders against the working directory and accepts file: URLs; drops duplicates', () => {
    vi.stubEnv(FIXTURES_ENV, '');
    const rel = relative(process.cwd(), a);
    expect(fixtureSearchPaths({ fixturePaths: [rel, pathToFileURL(`${b}/`), a], defaults: false })).toEqual([a, b]);
  });

  it('a folder given via fixturePaths is searched before the environment and the default locations', () => {
    vi.stubEnv(FIXTURES_ENV, b);
    // The repository's ../shared/fixtures may hold the real file too: the given folder still wins.
    expect(findFixture(AR_GRU_FIXTURE, { fixturePaths: [a] })).toMatchObject({ file: AR_GRU_FIXTURE, path: join(a, AR_GRU_FIXTURE) });
    expect(sharedFixturePath(AR_GRU_FIXTURE, [pathToFileURL(`${a}/`)])).toBe(join(a, AR_GRU_FIXTURE));
    // Not in the first folder: the next one that has it.
    expect(findFixture('only-in-b.json', { fixturePaths: [a, b] }).path).toBe(join(b, 'only-in-b.json'));
  });

  it('PELK_FIXTURES alone points the lookup at a folder (no code needed)', () => {
    vi.stubEnv(FIXTURES_ENV, [empty, b].join(delimiter));
    expect(findFixture('only-in-b.json').path).toBe(join(b, 'only-in-b.json'));
    expect(findFixture(AR_GRU_FIXTURE, { defaults: false }).path).toBe(join(b, AR_GRU_FIXTURE));
  });

  it('a missing fixture: no path, every folder searched, and a reason that says how to fix it', () => {
    vi.stubEnv(FIXTURES_ENV, b);
    const lookup = findFixture('not-a-fixture.json', { fixturePaths: [empty] });
    expect(lookup.path).toBeUndefined();
    expect(lookup.searched.slice(0, 2)).toEqual([empty, b]);
    expect(sharedFixturePath('not-a-fixture.json', [empty])).toBeUndefined();
    const reason = fixtureSkipReason(lookup);
    expect(reason).toContain('fixture not-a-fixture.json not found in');
    for (const dir of lookup.searched) expect(reason).toContain(dir);
    expect(reason).toMatch(/pass fixturePaths to defineConformanceSuite or set PELK_FIXTURES$/);
  });

  it('the shipped fixtures load from the package, and the default search finds them', () => {
    vi.stubEnv(FIXTURES_ENV, '');
    for (const name of FIXTURE_NAMES) {
      expect(loadFixture(name), name).toMatchObject({ name: expect.any(String), states: expect.any(Array) });
      const found = findFixture(`${name}.json`).path;
      expect(found?.split(sep).slice(-3), name).toEqual(['conformance', 'fixtures', `${name}.json`]);
    }
  });
});

// Collected with the lookup made now: no fixture anywhere the cases may look.
const missing = findFixture(AR_GRU_FIXTURE, { fixturePaths: [empty], defaults: false });
const MISSING_BLOCK = 'AR-GRU cases without their fixture';
describe(MISSING_BLOCK, () => {
  const run = () => Promise.reject(new Error('a skipped case ran'));
  defineArGruCases({ dtype: 'float64', run, methods: ['sequential', 'deer', 'quasi-deer', 'elk', 'quasi-elk'], fixture: missing });
});

describe('a missing fixture', () => {
  it('skips the AR-GRU cases (not fails them), each title saying which file, where it looked and how to point at it', ({ task }) => {
    expect(missing.path).toBeUndefined();
    const tests = collectTests(task.file.tasks.find((t) => t.name === MISSING_BLOCK));
    expect(tests).toHaveLength(2);
    for (const t of tests) {
      expect(t.mode, t.name).toBe('skip');
      expect(t.name).toContain(`— skipped: fixture ${AR_GRU_FIXTURE} not found in ${empty}`);
      expect(t.name).toMatch(/pass fixturePaths to defineConformanceSuite or set PELK_FIXTURES$/);
    }
  });
});

/** Every test under a task, depth first. */
function collectTests(task: RunnerTask | undefined): RunnerTask[] {
  if (!task) return [];
  if (task.type === 'suite') return (task as RunnerTestSuite).tasks.flatMap(collectTests);
  return [task];
}
