/**
 * Opening the engine of an existing pipeline for a command that only reads it (query,
 * dataset, export, privacy-scan). Such a command must not create an empty data directory
 * and then report "no rows" or "no identifiers found": a missing or empty one is refused,
 * and a directory a running pipeline holds (the embedded engine locks it) is answered with
 * the way round it instead of the engine's lock error.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createClickHouse, type ClickHouseClient } from '../lib/clickhouse.js';
import { ConfigError, type Config } from '../schemas/config.js';

type EngineConfig = Pick<Config, 'CLICKHOUSE_URL' | 'CLICKHOUSE_USER' | 'CLICKHOUSE_PASSWORD' | 'DATA_DIR'>;

/** The engine of an existing pipeline: a server, or an embedded data directory that has data. */
export function openExistingEngine(config: EngineConfig): ClickHouseClient {
  if (!config.CLICKHOUSE_URL) {
    const dir = path.join(config.DATA_DIR, 'clickhouse');
    if (!existsSync(dir) || readdirSync(dir).length === 0) {
      throw new ConfigError(`no pipeline data in ${path.resolve(config.DATA_DIR)}: give --data-dir of a pipeline's data directory, or --url and --key of a running pipeline`);
    }
  }
  try {
    return createClickHouse(config);
  } catch (err) {
    const locked = dataDirLockedMessage(config.DATA_DIR);
    if (locked) throw new ConfigError(locked);
    throw err;
  }
}

/**
 * The process holding an embedded data directory, if one does: the engine writes
 * `PID: <n>` into `<dir>/clickhouse/status` while it runs, and removes the file when it stops.
 */
export function dataDirHolder(dataDir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(dataDir, 'clickhouse', 'status'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(/^PID: (\d+)$/m.exec(text)?.[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/**
 * A friendly message when the embedded engine could not open a data directory because a
 * running pipeline holds it; undefined otherwise. chdb reports only "Failed to create
 * connection" (the engine's reason goes to stderr), so the holder is read from the engine's
 * own status file.
 */
export function dataDirLockedMessage(dataDir: string): string | undefined {
  const pid = dataDirHolder(dataDir);
  if (pid === undefined) return undefined;
  return `a pipeline (process ${pid}) is running on ${path.resolve(dataDir)}: read through it with --url and --key (the embedded engine allows one process per data directory)`;
}
