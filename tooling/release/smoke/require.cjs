// Release smoke test (CommonJS): the same check as eval.mjs with every @pelk package loaded by
// `require`, which Node >= 20.19 supports for ES modules (require(esm)):  node require.cjs <backend>
const { BACKENDS, runSmoke } = require('./problem.mjs');

const which = process.argv[2];
const spec = BACKENDS[which];
const loaded = { which, core: require('@pelk/core'), models: require('@pelk/models'), backendModule: require(spec.pkg), loadedWith: 'require' };
require(`${spec.pkg}/register`);
runSmoke(loaded).then((summary) => {
  console.log(JSON.stringify(summary));
  if (!summary.ok) process.exitCode = 1;
});
