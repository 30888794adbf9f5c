/** The fleet simulator's public API, for the demo, benchmarks and tests. */
export { Rng, hashSeed, mulberry32 } from './random.js';
export { loadTraces, cpuFactor, netFactor, dailyProfile, DEFAULT_TRACE_DIR, type Traces, type TraceOptions } from './traces.js';
export {
  createFleet, METRICS_BY_TYPE, REGIONS,
  type Fleet, type FleetOptions, type Account, type Resource, type ResourceProfile, type TsFormat,
} from './fleet.js';
export { generateSamples, countExpected, resolveStart, isoWithOffset, type GenerateOptions, type SampleBatch } from './samples.js';
export { INVALID_KINDS, makeInvalid, type InvalidKind } from './inject.js';
export { ExpectedTotals, type ExpectedRow } from './expected.js';
export { postBatches, retryAfterMs, PostError, type PostOptions, type PostSummary, type BatchResult } from './post.js';
export { runSimulateCommand } from './cli.js';
