/**
 * The reference trajectories (FORMAT.md beside them), computed in float64 by independent
 * implementations (PyTorch, NumPy). The four public ones ship with this package; the trained
 * AR-GRU carries the ELK authors' weights and is read from `../shared/fixtures` when present.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Names of the fixtures shipped with this package. */
export const FIXTURE_NAMES = ['gru-torch-small', 'lstm-torch-small', 'elman-torch-small', 'lorenz96-small'] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number];

/**
 * Loads a shipped fixture as parsed JSON.
 *
 * @example
 * ```ts
 * const spec = readModelSpec(loadFixture('gru-torch-small'));
 * ```
 */
export function loadFixture(name: FixtureName): unknown {
  const url = new URL(`../fixtures/${name}.json`, import.meta.url);
  return JSON.parse(readFileSync(fileURLToPath(url), 'utf8'));
}

/**
 * Path of a fixture in the repository's sibling `shared/fixtures` folder (used for fixtures the
 * repository must not include), or `undefined` when that folder is absent (a user's clone).
 */
export function sharedFixturePath(file: string): string | undefined {
  const candidates = [new URL(`../../../../shared/fixtures/${file}`, import.meta.url)];
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (existsSync(path)) return path;
  }
  return undefined;
}
