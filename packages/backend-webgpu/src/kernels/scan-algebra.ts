/**
 * The element algebra a chunked scan is generic over. A scan runs, per (batch, channel), over
 * elements `e_1..e_T` of an associative operator and a seed state `s_0`, producing the states
 * `s_u = apply(s_{u−1}, e_u)`. Its WGSL comes in three parts, because a
 * kernel may only name the bindings it has (WGSL resolves identifiers even in unused functions):
 *
 * - `wgsl` (every kernel): `alias Elem = array<f32, elementSize>;`,
 *   `alias State = array<f32, stateSize>;`, `fn combineElem(x : Elem, y : Elem) -> Elem` (`x`
 *   earlier, `y` later; associative) and `fn applyElem(s : State, e : Elem) -> State`;
 * - `rawWgsl` (level-0 kernels): `fn rawElem(b : i32, t : i32, d : i32) -> Elem`, the element at
 *   actual time `t` (0-based) of batch `b`, channel `d`, read from the `rawInputs` bindings
 *   (`[B, T, D]` row-major: index `(b * uniforms.T + t) * uniforms.D + d`; at level 0
 *   `uniforms.T` is the full length);
 * - `seedWgsl` (rescan kernels): `fn seedState(b : i32, d : i32) -> State`, read from the
 *   `seedInputs` bindings (`[B, D]`).
 *
 * All may read the f32 uniforms named in `floatUniforms`.
 */
export interface ScanAlgebra {
  /** Short identifier used in shader keys. */
  readonly name: string;
  /** Floats per element. */
  readonly elementSize: number;
  /** Floats per state. */
  readonly stateSize: number;
  /** Binding names of the raw element inputs (`[B, T, D]` each), in order. */
  readonly rawInputs: readonly string[];
  /** Binding names of the seed inputs (`[B, D]` each), in order. */
  readonly seedInputs: readonly string[];
  /** Names of extra f32 uniforms the WGSL reads (`uniforms.<name>`). */
  readonly floatUniforms: readonly string[];
  /** Element and state types, `combineElem`, `applyElem`. */
  readonly wgsl: string;
  /** `rawElem`. */
  readonly rawWgsl: string;
  /** `seedState`. */
  readonly seedWgsl: string;
}
