/** The conformance suite on @pelk/backend-cpu, float64 and float32. */
import { CpuBackend } from '@pelk/backend-cpu';
import { defineConformanceSuite } from './suite.js';

defineConformanceSuite({ name: 'cpu', createBackend: () => new CpuBackend() });
