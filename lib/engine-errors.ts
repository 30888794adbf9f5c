/**
 * Which engine errors are about the data itself: the same rows will be refused again on
 * every retry, by any healthy engine. Classified by the ClickHouse error type that
 * @clickhouse/client reports (ClickHouseError.type), never by message text. Anything else
 * (connection refused, timeouts, memory, too many parts…) is an outage: retried.
 */
import { ClickHouseError } from '@clickhouse/client';

const DATA_ERROR_TYPES = new Set([
  'INCORRECT_DATA',
  'UNKNOWN_ELEMENT_OF_ENUM',
  'ARGUMENT_OUT_OF_BOUND',
  'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE',
  'DECIMAL_OVERFLOW',
  'TYPE_MISMATCH',
  'INCORRECT_NUMBER_OF_COLUMNS',
  'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN',
  'TOO_LARGE_STRING_SIZE',
  'SIZES_OF_ARRAYS_DONT_MATCH',
  'INCORRECT_JSON',
]);

/** The engine refused the rows for what they hold (a parse or type error), not for its own state. */
export function isDataRefusal(err: unknown): boolean {
  const type = engineErrorType(err);
  return type !== undefined && (type.startsWith('CANNOT_PARSE_') || DATA_ERROR_TYPES.has(type));
}

/** The ClickHouse error type name, e.g. CANNOT_PARSE_ESCAPE_SEQUENCE, when the engine gave one. */
export function engineErrorType(err: unknown): string | undefined {
  if (err instanceof ClickHouseError) return err.type;
  // chdb's connection reports errors through its own copy of the client's error class.
  const type = err instanceof Error ? (err as Error & { type?: unknown }).type : undefined;
  return typeof type === 'string' ? type : undefined;
}
