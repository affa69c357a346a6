// Types for problem.mjs (plain JavaScript, so it runs in a blank project without a compiler).
export interface SmokeProblem {
  stateDict: { weight_ih_l0: number[][]; weight_hh_l0: number[][]; bias_ih_l0: number[]; bias_hh_l0: number[] };
  inputs: number[][];
  T: number;
  I: number;
  H: number;
}
export function smokeProblem(options?: { T?: number; I?: number; H?: number; seed?: number }): SmokeProblem;
export function gruReference(stateDict: SmokeProblem['stateDict'], inputs: number[][]): number[][];
export const BACKENDS: Record<'cpu' | 'tfjs' | 'webgpu', { pkg: string; registers: string; dtype: 'float64' | 'float32' }>;
export function runSmoke(args: { which: string; core: unknown; models: unknown; backendModule: unknown; loadedWith: string }): Promise<{ ok: boolean } & Record<string, unknown>>;
