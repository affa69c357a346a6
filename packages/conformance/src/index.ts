/**
 * @pelk/conformance — the suite every pelk compute backend runs (`defineConformanceSuite`), its
 * float64 host references and the shipped fixtures. The references and the fixtures are also
 * their own vitest-free entries: `@pelk/conformance/reference` (plain loops, runs in browsers)
 * and `@pelk/conformance/fixtures` (Node: reads the fixture files).
 */
export { type CellCase, cellFromSpec, checkJacobians, failingCell, jacobianCases, randomGru } from './cases.js';
export {
  FIXTURE_NAMES,
  FIXTURES_ENV,
  type FixtureLookup,
  type FixtureName,
  type FixtureSearchOptions,
  GRAD_FIXTURE_NAMES,
  PELK_AR_GRU_FIXTURE,
  type GradFixture,
  type GradFixtureName,
  findFixture,
  fixtureSearchPaths,
  fixtureSkipReason,
  loadFixture,
  loadGradFixture,
  loadPelkArGruFixture,
  sharedFixturePath,
} from './fixtures.js';
export {
  type DiagonalKalmanReference,
  diagonalKalmanReference,
  type KalmanCase,
  type KalmanReference,
  kalmanReference,
  levenbergMarquardtStep,
  linearRecurrence,
  maxAbs,
  maxAbsDiff,
  randomArray,
} from './references.js';
export { hostAdjointSweep } from './fused-adjoint-cases.js';
export { MEMORY_FAMILIES, type MemoryCaseOptions, defineMemoryCases } from './memory-cases.js';
export { type ConformanceOptions, defineConformanceSuite, testTier } from './suite.js';
