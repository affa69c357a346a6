// Release smoke test (ES modules), run inside a blank project that installed @pelk/core,
// @pelk/models and one backend with its peers from a registry:  node eval.mjs <cpu|tfjs|webgpu>
// Prints one JSON line; exit code 1 when the trajectory differs from the float64 GRU or tensors leak.
import * as core from '@pelk/core';
import * as models from '@pelk/models';
import { BACKENDS, runSmoke } from './problem.mjs';

const which = process.argv[2];
const spec = BACKENDS[which];
const backendModule = await import(spec.pkg);
// The `/register` entry must load too and register its backend by name.
await import(`${spec.pkg}/register`);
if (!core.registeredBackends().includes(spec.registers)) {
  throw new Error(`${spec.pkg}/register did not register '${spec.registers}' (registered: ${core.registeredBackends().join(', ')})`);
}
const summary = await runSmoke({ which, core, models, backendModule, loadedWith: 'import' });
console.log(JSON.stringify(summary));
if (!summary.ok) process.exitCode = 1;
