/**
 * @pelk/models — recurrent cells for pelk, written once against the backend-neutral ops of
 * `ComputeBackend`: GRU, LSTM, Elman, Lorenz-96, autoregressive (`ar`) and user-defined cells, each with analytic dense
 * and diagonal Jacobians; weight importers (PyTorch, flax, Keras / tfjs-layers weights, and
 * built tfjs-layers recurrent layers or saved tfjs layers models); and the model-spec JSON format.
 */
export { ACTIVATIONS, type Activation, type ActivationName, activation } from './activations.js';
export { ArCell, type ArInnerCell, type ArNoise, type ArOptions, type ArReadout, ar } from './ar.js';
export { CustomCell, type CustomCellOptions, type CustomStep, customCell } from './custom.js';
export {
  ElmanCell,
  type ElmanParameters,
  type KerasElmanConfig,
  type TorchElmanOptions,
  type TorchElmanWeights,
  elman,
} from './elman.js';
export {
  type FlaxDense,
  type FlaxGruOptions,
  type FlaxGruParams,
  GruCell,
  type GruParameters,
  type KerasGruConfig,
  type TorchGruWeights,
  gru,
} from './gru.js';
export { Lorenz96Cell, type Lorenz96Options, lorenz96 } from './lorenz96.js';
export { type KerasLstmConfig, LstmCell, type LstmParameters, type TorchLstmWeights, lstm } from './lstm.js';
export {
  type ModelSpec,
  type ModelSpecData,
  type ModelSpecJson,
  type ModelSpecWithInputs,
  type ReadModelSpecOptions,
  readCellSpec,
  readModelSpec,
  writeModelSpec,
} from './spec.js';
export {
  type TfjsLayerLike,
  type TfjsModelArtifacts,
  type TfjsModelCell,
  type TfjsModelJson,
  type TfjsModelLayerOptions,
  type TfjsModelOptions,
  type TfjsRecurrentCell,
  type TfjsTensorLike,
  type TfjsWeightData,
  type TfjsWeightSpec,
  cellFromTfjsLayer,
  cellFromTfjsLayerAsync,
  cellFromTfjsModel,
  cellsFromTfjsModel,
} from './tfjs-layers.js';
export type {
  ArReadoutSpec,
  ArSpec,
  CellSpec,
  ElmanSpec,
  FlaxDenseSpec,
  FlaxGruWeightsSpec,
  GruSpec,
  KerasWeightsSpec,
  Lorenz96Spec,
  LstmSpec,
  ModelCell,
  RandomRnnOptions,
  SizeOptions,
  TorchWeightsSpec,
  WeightLike,
} from './types.js';
export { mulberry32 } from './host.js';
