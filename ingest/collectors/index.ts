/**
 * The collectors' public surface: what the ingest process and the CLI wire up. See
 * README.md beside this file for how the pieces fit and how to add a mapping.
 */
export { PullCollector, type PullCollectorOptions, type ScrapeReport, type TargetHealth, type TargetStatus } from './collector.js';
export type { TrackerOptions } from './counters.js';
export {
  detectFormat,
  formatImportSummary,
  importFile,
  importSamples,
  ImportAbortedError,
  ImportFormatError,
  type ImportFormat,
  type ImportOptions,
  type ImportProgress,
  type ImportSummary,
} from './import.js';
export type { CollectorLogger } from './logger.js';
export { BUILTIN_MAPPINGS, MappingRegistry, defineMapping, mappingSchema, type Mapping } from './mappings/index.js';
export { parsePrometheusText, PromParseError, type MetricFamily, type PromSample } from './prometheus-text.js';
export { ScrapeError, type ScrapeErrorCode } from './scrape.js';
export { loadTargets, TargetConfigError, type LoadTargetsOptions, type ResolvedTarget, type TargetList, type TargetSpec } from './targets.js';
