/**
 * @pelk/conformance — the suite every pelk compute backend runs (`defineConformanceSuite`), its
 * float64 host references and the shipped fixtures.
 */
export { type CellCase, cellFromSpec, checkJacobians, failingCell, jacobianCases, randomGru } from './cases.js';
export { FIXTURE_NAMES, type FixtureName, loadFixture, sharedFixturePath } from './fixtures.js';
export { linearRecurrence, maxAbs, maxAbsDiff, randomArray } from './reference.js';
export { type ConformanceOptions, defineConformanceSuite } from './suite.js';
