/**
 * Strict option objects: an unknown key (a typo such as `nonLinearity` for `nonlinearity`) is a
 * typed error, never silently ignored.
 */
import { InvalidArgumentError } from './errors.js';

/**
 * Optimal-string-alignment distance (Damerau–Levenshtein with adjacent transpositions, each
 * substring edited once) between two strings; stops early and returns `limit + 1` once the
 * distance is known to exceed `limit`.
 */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  const n = b.length;
  let prev2 = new Array<number>(n + 1).fill(0);
  let prev = Array.from({ length: n + 1 }, (_, j) => j);
  let cur = new Array<number>(n + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    cur[0] = i;
    let rowMin = i;
    for (let j = 1; j <= n; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2] + 1);
      cur[j] = d;
      if (d < rowMin) rowMin = d;
    }
    if (rowMin > limit) return limit + 1;
    [prev2, prev, cur] = [prev, cur, prev2];
  }
  return prev[n];
}

/**
 * The known key closest to `key`, or `undefined` when none is close: a case-insensitive match
 * first, else the smallest edit distance (Damerau–Levenshtein, case-insensitive) that is at most
 * 2 and at most a third of the longer name (so short names need a near match).
 *
 * @example
 * ```ts
 * closestKey('nonLinearity', ['nonlinearity', 'inputSize']); // 'nonlinearity'
 * closestKey('hiden', ['hidden']); // 'hidden'
 * closestKey('xyz', ['dt']); // undefined
 * ```
 */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const exact = known.find((k) => k.toLowerCase() === lower);
  if (exact !== undefined) return exact;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const limit = Math.min(2, Math.floor(Math.max(k.length, key.length) / 3));
    if (limit < 1) continue;
    const d = editDistance(lower, k.toLowerCase(), limit);
    if (d <= limit && d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** A key as it appears in a field path: `a.b` for identifiers, `a["two words"]` otherwise. */
function keyPath(field: string, key: string): string {
  const plain = /^[A-Za-z_$][\w$]*$/.test(key);
  if (!field) return plain ? key : JSON.stringify(key);
  return plain ? `${field}.${key}` : `${field}[${JSON.stringify(key)}]`;
}

/**
 * Throws {@link InvalidArgumentError} for the first own enumerable key of `obj` that is not in
 * `known`. The error's `field` is the key's path (`options.nonLinearity`), `expected` lists the
 * known keys and `received` names the key, with a "did you mean …?" hint when a known key is close
 * (see {@link closestKey}). Keys whose value is `undefined` are unknown all the same (a typo is a
 * typo whatever its value).
 *
 * @example
 * ```ts
 * checkKnownKeys({ nonLinearity: 'relu' }, ['inputSize', 'hiddenSize', 'nonlinearity'], 'options');
 * // InvalidArgumentError: options.nonLinearity: expected only the keys `inputSize`, `hiddenSize`,
 * //   `nonlinearity`, received an unknown key `nonLinearity` (did you mean `nonlinearity`?)
 * ```
 */
export function checkKnownKeys(obj: object, known: readonly string[], field: string): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const hint = closestKey(key, known);
    const expected = known.length ? `only the keys ${known.map((k) => `\`${k}\``).join(', ')}` : 'no keys';
    throw new InvalidArgumentError(
      keyPath(field, key),
      expected,
      `an unknown key \`${key}\`${hint !== undefined ? ` (did you mean \`${hint}\`?)` : ''}`,
    );
  }
}
