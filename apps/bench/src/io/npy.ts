/**
 * NumPy `.npy` files. Reading goes through `npyjs`; writing is the documented format: the magic
 * `\x93NUMPY`, version 1.0, a little-endian header length, a Python-dict header padded with spaces
 * to a multiple of 64 bytes and ending in `\n`, then the raw little-endian data in C order.
 */
import { InvalidArgumentError } from '@pelk/core';
import { parse } from 'npyjs';

/** A float64 array with its shape. */
export interface NpyArray {
  readonly data: Float64Array;
  readonly shape: number[];
}

/**
 * Parses `.npy` bytes into float64 data (any real numeric dtype is converted; Fortran order is
 * transposed to C order is not supported and rejected).
 *
 * @example
 * ```ts
 * const { data, shape } = readNpy(readFileSync('inputs.npy'), '--inputs');
 * ```
 */
export function readNpy(bytes: Uint8Array, field: string): NpyArray {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(buffer);
  } catch (err) {
    throw new InvalidArgumentError(field, 'a NumPy .npy file', `unreadable data (${(err as Error).message})`);
  }
  if (parsed.fortranOrder) {
    throw new InvalidArgumentError(field, 'a C-order .npy array', 'a Fortran-order array (save with np.ascontiguousarray)');
  }
  const src = parsed.data as unknown as ArrayLike<number | bigint>;
  const data = new Float64Array(src.length);
  for (let i = 0; i < src.length; i++) data[i] = Number(src[i]);
  return { data, shape: [...parsed.shape] };
}

/**
 * Encodes float64 data as a `.npy` file (version 1.0, `<f8`, C order).
 *
 * @example
 * ```ts
 * writeFileSync('states.npy', writeNpy(states, [T, D]));
 * ```
 */
export function writeNpy(data: ArrayLike<number>, shape: readonly number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f8', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const preamble = 10; // magic (6) + version (2) + header length (2)
  const total = Math.ceil((preamble + header.length + 1) / 64) * 64;
  header = `${header.padEnd(total - preamble - 1, ' ')}\n`;
  const out = new Uint8Array(total + data.length * 8);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[preamble + i] = header.charCodeAt(i);
  const view = new DataView(out.buffer, total);
  for (let i = 0; i < data.length; i++) view.setFloat64(i * 8, data[i], true);
  return out;
}
