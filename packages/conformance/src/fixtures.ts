/**
 * The reference trajectories (FORMAT.md beside them), computed in float64 by independent
 * implementations (PyTorch, NumPy). The four public ones ship with this package (its `fixtures/`
 * folder); others — the trained AR-GRU, which carries the ELK authors' weights — are not shipped
 * and are looked up with {@link findFixture}: in the folders a caller names, then in
 * `PELK_FIXTURES`, then in the default locations.
 */
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Names of the fixtures shipped with this package. */
export const FIXTURE_NAMES = ['gru-torch-small', 'lstm-torch-small', 'elman-torch-small', 'lorenz96-small'] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number];

/**
 * The environment variable naming extra fixture folders, separated by the platform's path
 * delimiter (`:` on POSIX, `;` on Windows), e.g. `PELK_FIXTURES=/data/pelk-fixtures`.
 */
export const FIXTURES_ENV = 'PELK_FIXTURES';

/**
 * The package's own `fixtures/` folder. Both `src/fixtures.ts` and the built `dist/*.js` (tsdown
 * bundles every entry and chunk at the top of `dist/`) sit one level below the package root, so
 * the same relative URL serves a workspace checkout and an installed package.
 */
const SHIPPED_DIR = fileURLToPath(new URL('../fixtures/', import.meta.url));

/**
 * The repository's sibling `shared/fixtures` folder (`<repo>/../shared/fixtures`), where the
 * fixtures the repository must not include live in CI and on the maintainers' machines. Only
 * meaningful in a checkout: from an installed package (a path through `node_modules`) the same
 * relative URL lands somewhere arbitrary inside `node_modules`, so it is left out there.
 */
function repositorySharedDir(): string | undefined {
  const packageRoot = fileURLToPath(new URL('../', import.meta.url));
  if (packageRoot.split(sep).includes('node_modules')) return undefined;
  return fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));
}

/** Options of {@link findFixture} and {@link fixtureSearchPaths}. */
export interface FixtureSearchOptions {
  /**
   * Folders searched first, in order (strings are resolved against the working directory;
   * `file:` URLs are accepted, e.g. `new URL('./fixtures/', import.meta.url)`).
   */
  readonly fixturePaths?: readonly (string | URL)[];
  /**
   * Whether the default locations (this package's `fixtures/` and, in a pelk checkout, the
   * repository's sibling `shared/fixtures`) are searched after the given folders and
   * `PELK_FIXTURES`. Default `true`; `false` searches only what the caller and the environment name.
   */
  readonly defaults?: boolean;
}

/** What {@link findFixture} found: the file's path, or `undefined` and every folder it looked in. */
export interface FixtureLookup {
  /** The file name looked up, e.g. `'argru-sine-trained.json'`. */
  readonly file: string;
  /** Absolute path of the first match, or `undefined` when no folder has it. */
  readonly path: string | undefined;
  /** The folders searched, in order (absolute paths). */
  readonly searched: readonly string[];
}

/**
 * The folders a fixture is looked up in, in order: `options.fixturePaths`, then the folders in
 * the `PELK_FIXTURES` environment variable (read at each call), then the default locations —
 * this package's `fixtures/` and, in a pelk checkout, `../shared/fixtures` beside the repository.
 * Duplicates are dropped (the first occurrence keeps its place).
 *
 * @example
 * ```ts
 * // PELK_FIXTURES=/data/pelk
 * fixtureSearchPaths({ fixturePaths: ['./my-fixtures'] });
 * // ['/cwd/my-fixtures', '/data/pelk', '…/node_modules/@pelk/conformance/fixtures']
 * ```
 */
export function fixtureSearchPaths(options: FixtureSearchOptions = {}): string[] {
  const given = (options.fixturePaths ?? []).map((p) => (p instanceof URL ? fileURLToPath(p) : resolve(p)));
  // `process` may be absent (a bundler's browser build); this module reads files, so it is
  // Node-only anyway, but an absent environment just means no extra folders.
  const env = (globalThis.process?.env?.[FIXTURES_ENV] ?? '')
    .split(delimiter)
    .filter((p) => p.trim() !== '')
    .map((p) => resolve(p));
  const defaults = options.defaults === false ? [] : [SHIPPED_DIR, repositorySharedDir()].filter((p): p is string => p !== undefined);
  return [...new Set([...given, ...env, ...defaults].map((p) => resolve(p)))];
}

/**
 * Looks a fixture file up in {@link fixtureSearchPaths} and returns the first match together with
 * the folders searched (for a skip or error message that says where it looked).
 *
 * @example
 * ```ts
 * const found = findFixture('argru-sine-trained.json', { fixturePaths: ['/data/pelk'] });
 * if (!found.path) console.log(`not found in ${found.searched.join(', ')}`);
 * ```
 */
export function findFixture(file: string, options: FixtureSearchOptions = {}): FixtureLookup {
  const searched = fixtureSearchPaths(options);
  const path = searched.map((dir) => join(dir, file)).find((p) => existsSync(p));
  return { file, path, searched };
}

/**
 * Why a fixture test is skipped, for its title: the file, where it was looked for, and how to
 * point the suite at it.
 *
 * @example
 * ```ts
 * it.skip(`${title} — skipped: ${fixtureSkipReason(findFixture('argru-sine-trained.json'))}`, () => {});
 * ```
 */
export function fixtureSkipReason(lookup: FixtureLookup): string {
  const where = lookup.searched.length > 0 ? lookup.searched.join(', ') : '(no folders)';
  return `fixture ${lookup.file} not found in ${where}; pass fixturePaths to defineConformanceSuite or set ${FIXTURES_ENV}`;
}

/**
 * Loads a shipped fixture as parsed JSON.
 *
 * @example
 * ```ts
 * const spec = readModelSpec(loadFixture('gru-torch-small'));
 * ```
 */
export function loadFixture(name: FixtureName): unknown {
  return JSON.parse(readFileSync(join(SHIPPED_DIR, `${name}.json`), 'utf8'));
}

/**
 * The AR-GRU the repository trains itself (`pnpm pelk train ar-sine`, ELK paper's stability task),
 * shipped: the stability suite, the demo and the AR-GRU cases use it by default.
 */
export const PELK_AR_GRU_FIXTURE = 'argru-sine-pelk';

/** Reads the shipped AR-GRU fixture ({@link PELK_AR_GRU_FIXTURE}). */
export function loadPelkArGruFixture(): unknown {
  return JSON.parse(readFileSync(join(SHIPPED_DIR, `${PELK_AR_GRU_FIXTURE}.json`), 'utf8'));
}

/** Names of the shipped gradient fixtures (`grad-<name>.json`, written by `oracles/grad_oracle.py`). */
export const GRAD_FIXTURE_NAMES = ['gru-torch-small', 'lstm-torch-small', 'elman-torch-small', 'gru-difficult'] as const;
export type GradFixtureName = (typeof GRAD_FIXTURE_NAMES)[number];

/**
 * A gradient fixture: a model spec, inputs, initial state, a cotangent `C` and PyTorch autograd's
 * float64 gradients of `L = Σ C ⊙ states` (weights by state_dict name, inputs, initial state).
 */
export interface GradFixture {
  readonly name: string;
  readonly oracle: string;
  readonly cell: unknown;
  readonly steps: number;
  readonly inputs: number[][];
  readonly initialState: number[];
  readonly cotangent: number[][];
  readonly states: number[][];
  readonly loss: number;
  readonly gradients: {
    readonly parameters: Record<string, number[] | number[][]>;
    readonly inputs: number[][];
    readonly initialState: number[];
  };
}

/** Reads a shipped gradient fixture. */
export function loadGradFixture(name: GradFixtureName): GradFixture {
  return JSON.parse(readFileSync(join(SHIPPED_DIR, `grad-${name}.json`), 'utf8')) as GradFixture;
}

/**
 * Path of a fixture that is not shipped (e.g. `'argru-sine-trained.json'`), or `undefined` when
 * no folder has it. Searches `fixturePaths`, then `PELK_FIXTURES`, then the default locations
 * (see {@link findFixture}, which also reports where it looked).
 *
 * @example
 * ```ts
 * const path = sharedFixturePath('argru-sine-trained.json', ['/data/pelk']);
 * ```
 */
export function sharedFixturePath(file: string, fixturePaths: readonly (string | URL)[] = []): string | undefined {
  return findFixture(file, { fixturePaths }).path;
}
