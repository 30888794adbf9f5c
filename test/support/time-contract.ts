/**
 * The response time contract (issue 17): every instant in a response is RFC 3339 in UTC
 * with `Z` (`2026-11-30T01:33:16.370Z`). A string holding something that looks like a date
 * and a time — alone or inside a message — is checked; calendar days (`2026-11-30`) and
 * months (`2026-11`) are labels, not instants, and pass. Epoch numbers are not strings.
 */

/** A date followed by a time of day, with whatever zone (or none) follows it. */
const TIME_LIKE = /\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?|\s?UTC)?/g;
const RFC3339_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

export interface TimeViolation {
  /** Where in the document: `$.periods[0].closed_at`. */
  path: string;
  value: string;
}

/** Every time-like string in a JSON value that is not RFC 3339 with Z. */
export function timeViolations(doc: unknown, path = '$'): TimeViolation[] {
  if (typeof doc === 'string') {
    const bad = [...doc.matchAll(TIME_LIKE)].map((m) => m[0]).filter((t) => !RFC3339_Z.test(t));
    return bad.length > 0 ? [{ path, value: doc.length > 200 ? `${doc.slice(0, 200)}…` : doc }] : [];
  }
  if (Array.isArray(doc)) return doc.flatMap((v, i) => timeViolations(v, `${path}[${i}]`));
  if (doc !== null && typeof doc === 'object') return Object.entries(doc).flatMap(([k, v]) => timeViolations(v, `${path}.${k}`));
  return [];
}

/** The violations of an NDJSON body, line by line. */
export function ndjsonTimeViolations(text: string): TimeViolation[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((line, i) => timeViolations(JSON.parse(line), `line ${i + 1}`));
}
