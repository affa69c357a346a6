/**
 * The `pelk` command-line tool (`pnpm pelk …` from the repository root).
 *
 *   pelk eval  --model FILE.json [--inputs FILE.npy] [--method M] [--backend B] [--dtype float64|float32]
 *              [--tol X] [--max-iters N] [--kalman filter|smoother] [--sigma-sq X|adaptive]
 *              [--out FILE.npy|FILE.json] [--json]
 *   pelk grad  --model FILE.json --cotangent C.npy --out G.json [--inputs FILE.npy] [--method M] [--adjoint A]
 *              [--backend B] [--dtype …] [--tol X] [--adjoint-tol X] [--allow-non-converged] [--json]
 *   pelk train ar-sine [--out FILE.json] [--seed N] [--steps N] [--batch B] [--length T] [--json]
 *   pelk bench [--suite gru,scaling,stability,peers,kernels,gpu|all] [--quick] [--out-dir DIR] [suite options…]
 *   pelk demo  [--steps T] [--hidden D] [--dtype …]
 *   pelk gpu-bundle --out DIR (a self-contained folder that runs the gpu suite on a GPU machine)
 *   pelk --version (-V)
 *
 * Errors print one line (`pelk: …`) and exit non-zero; set PELK_DEBUG=1 for a stack trace.
 * Exit codes: 0 success; 1 internal error; 2 bad input; 3 `eval` finished without converging
 * (after writing `--out` and the summary).
 */
import { InvalidArgumentError, PelkError } from '@pelk/core';
import corePackage from '@pelk/core/package.json' with { type: 'json' };
import { Command, CommanderError, Option } from 'commander';
import { BACKEND_NAMES, TFJS_BACKEND_NAMES, backendSpec, defaultDTypes, releaseBackends } from './backends.js';
import { formatBench, gruFiles, runBench } from './commands/bench.js';
import { formatGpu, gpuFiles, runGpu } from './commands/gpu.js';
import { buildGpuBundle } from './commands/gpu-bundle.js';
import { formatKernels, kernelsFiles, runKernels } from './commands/kernels.js';
import { runDemo } from './commands/demo.js';
import { formatPeers, peersFiles, runPeers } from './commands/peers.js';
import { formatScaling, runScaling, scalingFiles } from './commands/scaling.js';
import { formatStability, runStability, stabilityFiles } from './commands/stability.js';
import { writeHtmlReport, writeOutputs } from './report.js';
import { EXIT_NOT_CONVERGED, formatSummary, runEval } from './commands/eval.js';
import { formatGradSummary, runGrad } from './commands/grad.js';
import { AR_SINE_DEFAULTS, DEFAULT_AR_SINE_OUT, runTrainArSine } from './commands/train.js';
import { parseAdjoint, parseDType, parseKalman, parseMethod, parseNonNegativeInt, parsePositive, parsePositiveInt, parseStabilitySet } from './options.js';

/** The exit status a command asks for when it finishes without an error (`eval`: 3 when not converged). */
let commandExitCode = 0;

/**
 * The version of the pelk packages, read at run time from @pelk/core's package.json. The @pelk/*
 * packages are released in lockstep; this app is private, and changesets leaves private packages'
 * versions alone, so core's is the one that moves.
 */
export const PELK_VERSION: string = corePackage.version;

const program = new Command('pelk')
  .description('Parallel-in-time evaluation of nonlinear RNNs (DEER, quasi-DEER, ELK, quasi-ELK)')
  .version(PELK_VERSION, '-V, --version', 'print the version of the pelk packages')
  .exitOverride()
  .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'pelk: ')) });

program
  .command('eval')
  .description('evaluate a model-spec JSON (the shared fixtures format)')
  .requiredOption('--model <file>', 'model-spec JSON file')
  .option('--inputs <file>', "inputs .npy, [T, I] or [B, T, I] (replaces the spec's data; required when the spec has none)")
  .option('--method <method>', 'sequential | deer | quasi-deer | elk | quasi-elk | auto', 'quasi-deer')
  .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_NAMES).default('cpu'))
  .addOption(new Option('--tfjs-backend <name>', 'with --backend tfjs: the tfjs backend (default: tensorflow if tfjs-node is installed, else wasm, else cpu)').choices(TFJS_BACKEND_NAMES))
  .option('--threads <n>', 'with --backend wasm: threads, this one included (default: the available cores)')
  .option('--dtype <dtype>', 'float64 | float32 (default: float64 on cpu, float32 on tfjs and webgpu)')
  .option('--tol <x>', 'convergence certificate: true residual max_t |s_t − f(s_t−1)| ≤ x (default 1e-7 float64, 1e-4 float32; at least 16 unit roundoffs)')
  .option('--max-iters <n>', 'iteration cap (default T + 1 for deer and quasi-deer; max(T + 1, 1000) for elk, quasi-elk and auto)')
  .option('--kalman <mode>', 'ELK step: filter | smoother', 'filter')
  .option('--sigma-sq <x>', "ELK damping: σ² = 1/λ, or 'adaptive'", 'adaptive')
  .option('--out <file>', 'write the states (.npy float64 or .json [T][D])')
  .option('--json', 'print a one-line JSON summary', false)
  .addHelpText(
    'after',
    `
Exit codes:
  0  converged
  1  internal error
  2  bad input, checked before the run (one line: pelk: field: expected …, received …),
     including an --out whose folder is missing, not a folder or not writable
  ${EXIT_NOT_CONVERGED}  finished without converging: --out and the summary are written first;
     the summary's "reason" says why (max-iterations, clipped, non-finite, stalled)`,
  )
  .action(async (o) => {
    const summary = await runEval({
      model: o.model,
      inputs: o.inputs,
      method: parseMethod(o.method),
      backend: backendSpec(o.backend, o.tfjsBackend, o.threads === undefined ? undefined : parsePositiveInt(o.threads, '--threads')),
      dtype: o.dtype === undefined ? defaultDTypes(o.backend)[0] : parseDType(o.dtype),
      tol: o.tol === undefined ? undefined : parsePositive(o.tol, '--tol'),
      maxIters: o.maxIters === undefined ? undefined : parsePositiveInt(o.maxIters, '--max-iters'),
      kalman: parseKalman(o.kalman),
      sigmaSq: o.sigmaSq === 'adaptive' ? 'adaptive' : parsePositive(o.sigmaSq, '--sigma-sq'),
      out: o.out,
      json: o.json,
    });
    process.stdout.write(`${o.json ? JSON.stringify(summary) : formatSummary(summary)}\n`);
    if (!summary.converged) {
      process.stderr.write(`pelk: not converged (${summary.reason}); exit status ${EXIT_NOT_CONVERGED}\n`);
      commandExitCode = EXIT_NOT_CONVERGED;
    }
  });

program
  .command('grad')
  .description('gradient of L = Σ C ⊙ states for a model-spec JSON: ∂L/∂(each weight, by the spec\'s names), ∂L/∂inputs, ∂L/∂initialState')
  .requiredOption('--model <file>', 'model-spec JSON file')
  .requiredOption('--cotangent <file>', 'C, a .npy shaped as the states: [T, D] or [B, T, D]')
  .requiredOption('--out <file>', 'the gradients, a .json file')
  .option('--inputs <file>', "inputs .npy, [T, I] or [B, T, I] (replaces the spec's data; required when the spec has none)")
  .option('--method <method>', 'forward solve: sequential | deer | quasi-deer | elk | quasi-elk | auto', 'quasi-deer')
  .option('--adjoint <method>', 'adjoint solve: auto | sequential | dense | diagonal', 'auto')
  .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_NAMES).default('cpu'))
  .addOption(new Option('--tfjs-backend <name>', 'with --backend tfjs: the tfjs backend').choices(TFJS_BACKEND_NAMES))
  .option('--threads <n>', 'with --backend wasm: threads, this one included (default: the available cores)')
  .option('--dtype <dtype>', 'float64 | float32 (default: float64 on cpu, float32 on tfjs and webgpu)')
  .option('--tol <x>', 'forward certificate: true residual ≤ x (default 1e-7 float64, 1e-4 float32); the gradient inherits the trajectory\'s error')
  .option('--max-iters <n>', 'forward iteration cap')
  .option('--kalman <mode>', 'ELK step: filter | smoother', 'filter')
  .option('--adjoint-tol <x>', 'adjoint certificate: relative residual ≤ x (default 1e-12 float64, 1e-6 float32)')
  .option('--allow-non-converged', 'differentiate at a forward trajectory that did not converge (refused by default)', false)
  .option('--json', 'print a one-line JSON summary', false)
  .addHelpText(
    'after',
    `
Exit codes:
  0  both solves certified
  1  internal error
  2  bad input (one line: pelk: field: expected …, received …), including a cotangent of the wrong
     shape or with non-finite values, and a forward solve that did not converge
  ${EXIT_NOT_CONVERGED}  the adjoint solve did not converge, or the forward one (with --allow-non-converged):
     --out and the summary are written first`,
  )
  .action(async (o) => {
    const summary = await runGrad({
      model: o.model,
      inputs: o.inputs,
      cotangent: o.cotangent,
      method: parseMethod(o.method),
      adjoint: parseAdjoint(o.adjoint),
      backend: backendSpec(o.backend, o.tfjsBackend, o.threads === undefined ? undefined : parsePositiveInt(o.threads, '--threads')),
      dtype: o.dtype === undefined ? defaultDTypes(o.backend)[0] : parseDType(o.dtype),
      tol: o.tol === undefined ? undefined : parsePositive(o.tol, '--tol'),
      maxIters: o.maxIters === undefined ? undefined : parsePositiveInt(o.maxIters, '--max-iters'),
      kalman: parseKalman(o.kalman),
      adjointTol: o.adjointTol === undefined ? undefined : parsePositive(o.adjointTol, '--adjoint-tol'),
      allowNonConverged: o.allowNonConverged,
      out: o.out,
      json: o.json,
    });
    process.stdout.write(`${o.json ? JSON.stringify(summary) : formatGradSummary(summary)}\n`);
    // Exit 0 certifies both solves; a forward solve allowed not to converge is not certified either.
    const unconverged = [!summary.forward.converged && `forward ${summary.forward.reason}`, !summary.adjoint.converged && `adjoint ${summary.adjoint.reason}`].filter(Boolean);
    if (unconverged.length > 0) {
      process.stderr.write(`pelk: not converged (${unconverged.join(', ')}); exit status ${EXIT_NOT_CONVERGED}\n`);
      commandExitCode = EXIT_NOT_CONVERGED;
    }
  });

program
  .command('train')
  .description("train a model with pelk's own gradients and write it as a fixture; 'ar-sine': the autoregressive GRU of the ELK paper's stability experiment, on noisy sine waves")
  .argument('<task>', 'ar-sine')
  .option('--out <file>', 'the fixture to write (.json)', DEFAULT_AR_SINE_OUT)
  .option('--seed <n>', 'seed of the data, the initial weights and the rollout drivers', String(AR_SINE_DEFAULTS.seed))
  .option('--steps <n>', 'Adam steps', String(AR_SINE_DEFAULTS.steps))
  .option('--batch <n>', 'sequences per step', String(AR_SINE_DEFAULTS.batch))
  .option('--length <n>', 'length of each training sequence', String(AR_SINE_DEFAULTS.length))
  .option('--json', 'print a one-line JSON summary', false)
  .action(async (task, o) => {
    if (task !== 'ar-sine') throw new InvalidArgumentError('task', "'ar-sine'", JSON.stringify(task));
    const summary = await runTrainArSine({
      out: o.out,
      seed: parseNonNegativeInt(o.seed, '--seed'),
      steps: parsePositiveInt(o.steps, '--steps'),
      batch: parsePositiveInt(o.batch, '--batch'),
      length: parsePositiveInt(o.length, '--length'),
      progress: o.json ? undefined : (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(`${o.json ? JSON.stringify(summary) : summary.text}\n`);
  });

const SUITES = ['gru', 'scaling', 'stability', 'peers', 'kernels', 'gpu'] as const;
/** What `--suite all` runs: every suite but gpu, which needs a WebGPU adapter and is run by name. */
const ALL_SUITES = SUITES.filter((s) => s !== 'gpu');

program
  .command('bench')
  .description('benchmark suites: gru (default), scaling, stability, peers, kernels (the WebAssembly kernels), gpu (the WebGPU adapter), or all (every suite but gpu) — JSON, SVG plots and an HTML report')
  .option('--suite <names>', `comma-separated: ${SUITES.join(', ')}, or all (all but gpu)`, 'gru')
  .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_NAMES).default('cpu'))
  .addOption(new Option('--tfjs-backend <name>', 'with --backend tfjs: the tfjs backend (default: tensorflow if tfjs-node is installed, else wasm, else cpu)').choices(TFJS_BACKEND_NAMES))
  .option('--threads <n>', 'with --backend wasm: threads, this one included (default: the available cores)')
  .option('--out-dir <dir>', 'folder for each suite\'s JSON and SVG plots and index.html', 'bench-results')
  .option('--quick', 'small sizes: each suite in well under a minute (stability: a few minutes)', false)
  .option('--steps <T>', 'gru: sequence length', '100000')
  .option('--deer-steps <T>', "gru: sequence length for 'deer' (its dense scan costs O(T·D³))", '10000')
  .option('--hidden <D>', 'gru: hidden size', '64')
  .option('--input <I>', 'gru: input size', '8')
  .option('--batch <B>', 'gru: batch size', '1')
  .option('--methods <list>', 'gru: comma-separated methods', 'sequential,quasi-deer,deer')
  .option('--dtypes <list>', 'gru and scaling: comma-separated dtypes (scaling uses the first; default float64,float32 on cpu, float32 elsewhere)')
  .option('--warmup <n>', 'gru: untimed warm-up runs', '1')
  .option('--runs <n>', 'gru: timed runs (the median is reported)', '3')
  .option('--budget <seconds>', 'scaling and gpu: skip configurations predicted to take longer', '120')
  .option('--json <file>', 'gru: also write its results here')
  .option('--no-torch', 'gru: skip the torch.nn.GRU peer row (run by PELK_PYTHON, default python3, when it has torch)')
  .option('--peers-steps <list>', 'peers: comma-separated sequence lengths (default 1000,10000; quick: 200)')
  .option('--tfjs-backends <list>', 'peers: comma-separated tfjs backends to compare on', 'wasm,cpu')
  .option('--peers-methods <list>', 'peers: pelk methods on the tfjs backends', 'sequential,quasi-deer,deer')
  .option('--fixture <file>', "stability: the ELK authors' trained AR-GRU fixture, run beside the repository's own when found (default ../shared/fixtures/argru-sine-trained.json)")
  .option('--stability-set <set>', 'stability: tuning (the problems the adaptive damping was tuned on), held-out, or all', 'all')
  .option('--stability-run-budget <seconds>', 'stability: stop a solver run after this long, reported as not converged (default 600; quick: 120)')
  .action(async (o) => {
    const names = String(o.suite) === 'all' ? [...ALL_SUITES] : String(o.suite).split(',');
    for (const n of names) {
      if (!(SUITES as readonly string[]).includes(n)) {
        throw new InvalidArgumentError('--suite', `a comma-separated list of ${SUITES.join(', ')}, or all`, JSON.stringify(n));
      }
    }
    const backend = backendSpec(o.backend, o.tfjsBackend, o.threads === undefined ? undefined : parsePositiveInt(o.threads, '--threads'));
    const dtypes = o.dtypes === undefined ? defaultDTypes(o.backend) : String(o.dtypes).split(',').map((d) => parseDType(d, '--dtypes'));
    const quick = Boolean(o.quick);
    const stabilitySet = parseStabilitySet(String(o.stabilitySet));
    const stabilityRunBudget = o.stabilityRunBudget === undefined ? undefined : parsePositive(o.stabilityRunBudget, '--stability-run-budget');
    for (const suite of names) {
      let files: Record<string, string>;
      let text: string;
      if (suite === 'gru') {
        const report = await runBench({
          backend,
          steps: quick ? 10_000 : parsePositiveInt(o.steps, '--steps'),
          deerSteps: quick ? 1_000 : parsePositiveInt(o.deerSteps, '--deer-steps'),
          hidden: parsePositiveInt(o.hidden, '--hidden'),
          input: parsePositiveInt(o.input, '--input'),
          batch: parsePositiveInt(o.batch, '--batch'),
          methods: String(o.methods).split(',').map(parseMethod),
          dtypes,
          warmup: quick ? 1 : parseNonNegativeInt(o.warmup, '--warmup'),
          runs: quick ? 1 : parsePositiveInt(o.runs, '--runs'),
          json: o.json,
          torch: Boolean(o.torch),
        });
        text = formatBench(report);
        files = gruFiles(report, text);
      } else if (suite === 'scaling') {
        const report = await runScaling({ backend, quick, dtype: dtypes[0], budgetSeconds: parsePositive(o.budget, '--budget') });
        text = formatScaling(report);
        files = scalingFiles(report, text);
      } else if (suite === 'stability') {
        const report = await runStability({
          backend,
          quick,
          fixture: o.fixture,
          set: stabilitySet,
          runBudgetSeconds: stabilityRunBudget,
        });
        text = formatStability(report);
        files = stabilityFiles(report);
      } else if (suite === 'gpu') {
        const report = await runGpu({ quick, budgetSeconds: parsePositive(o.budget, '--budget') });
        text = formatGpu(report);
        files = gpuFiles(report, text);
      } else if (suite === 'kernels') {
        const report = await runKernels({
          quick,
          threads: o.threads === undefined ? undefined : [1, parsePositiveInt(o.threads, '--threads')],
          hidden: parsePositiveInt(o.hidden, '--hidden'),
          input: parsePositiveInt(o.input, '--input'),
        });
        text = formatKernels(report);
        files = kernelsFiles(report, text);
      } else {
        const report = await runPeers({
          quick,
          steps: o.peersSteps === undefined ? undefined : String(o.peersSteps).split(',').map((t) => parsePositiveInt(t, '--peers-steps')),
          tfjsBackends: String(o.tfjsBackends)
            .split(',')
            .map((b) => {
              if (b !== 'wasm' && b !== 'cpu') throw new InvalidArgumentError('--tfjs-backends', "a comma-separated list of 'wasm' and 'cpu'", JSON.stringify(b));
              return b;
            }),
          methods: String(o.peersMethods).split(',').map(parseMethod),
        });
        text = formatPeers(report);
        files = peersFiles(report, text);
      }
      writeOutputs(o.outDir, files);
      process.stdout.write(`${suite}:\n${text}\n\n`);
    }
    const index = writeHtmlReport(o.outDir);
    process.stdout.write(`wrote ${o.outDir}/ (JSON, SVG) and ${index}\n`);
  });

program
  .command('demo')
  .description('GRU, D=64, T=100,000: sequential vs quasi-DEER vs DEER on the default backend')
  .addOption(new Option('--backend <name>', 'compute backend').choices(BACKEND_NAMES).default('cpu'))
  .addOption(new Option('--tfjs-backend <name>', 'with --backend tfjs: the tfjs backend (default: tensorflow if tfjs-node is installed, else wasm, else cpu)').choices(TFJS_BACKEND_NAMES))
  .option('--threads <n>', 'with --backend wasm: threads, this one included (default: the available cores)')
  .option('--steps <T>', 'sequence length', '100000')
  .option('--deer-steps <T>', "steps for DEER, a prefix of the sequence (its dense scan costs O(T·D³))", '10000')
  .option('--hidden <D>', 'GRU hidden size', '64')
  .option('--input <I>', 'GRU input size', '8')
  .option('--dtype <dtype>', 'float64 | float32 (default: float64 on cpu, float32 on tfjs and webgpu)')
  .action(async (o) => {
    const text = await runDemo({
      backend: backendSpec(o.backend, o.tfjsBackend, o.threads === undefined ? undefined : parsePositiveInt(o.threads, '--threads')),
      steps: parsePositiveInt(o.steps, '--steps'),
      deerSteps: parsePositiveInt(o.deerSteps, '--deer-steps'),
      hidden: parsePositiveInt(o.hidden, '--hidden'),
      input: parsePositiveInt(o.input, '--input'),
      dtype: o.dtype === undefined ? defaultDTypes(o.backend)[0] : parseDType(o.dtype),
    });
    process.stdout.write(`${text}\n`);
  });

program
  .command('gpu-bundle')
  .description('write one self-contained folder (< 60 MB: Node.js, the bundled CLI, Dawn, the Vulkan loader) that runs the gpu suite on a Linux x86-64 machine with only a GPU driver: sh <out>/run.sh <results-folder>')
  .requiredOption('--out <dir>', 'the folder to write (must not exist, or be empty)')
  .option('--node-version <v>', 'Node.js version to ship (default: the running one)')
  .action(async (o) => {
    const bundle = await buildGpuBundle({ out: o.out, nodeVersion: o.nodeVersion });
    process.stdout.write(
      `wrote ${bundle.dir} (${(bundle.bytes / 2 ** 20).toFixed(1)} MiB, Node ${bundle.nodeVersion}${bundle.vulkanLoader ? ', with the Vulkan loader' : ''}); on the GPU machine: sh ${bundle.dir}/run.sh <results-folder>\n`,
    );
  });

/** Runs the CLI; resolves to the exit code. Exported for tests. */
export async function main(argv: readonly string[]): Promise<number> {
  commandExitCode = 0;
  try {
    await program.parseAsync(argv, { from: 'user' });
    await releaseBackends();
    return commandExitCode;
  } catch (err) {
    await releaseBackends().catch(() => {});
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof PelkError) {
      process.stderr.write(`pelk: ${err.message.split('\n').join('\n  ')}\n`);
      return 2;
    }
    process.stderr.write(`pelk: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
    if (process.env.PELK_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
