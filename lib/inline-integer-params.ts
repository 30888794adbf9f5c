/**
 * Integer query parameters written into the statement as typed literals, for the embedded
 * engine's pipeline session only.
 *
 * Why: chdb runs every statement that has query parameters (its queryBind path) under one
 * process-wide lock, whatever session it is on, for as long as the statement runs. The
 * pipeline's own statements (fold rounds, recomputations, period close) carry only numbers
 * (hours, sequence numbers, versions), yet through the bind path each of them held back
 * every parameterized API read on the API's session (test/engine-sessions.integration.test.ts).
 * Written as literals they take chdb's plain path, which runs beside the other sessions.
 *
 * Only numbers are ever written into SQL here, each checked to be a safe integer (or a
 * bigint) and wrapped in CAST(… AS <the placeholder's own type>), for integer and DateTime
 * types and arrays (and arrays of tuples) of them. A statement with any other parameter
 * (a string, a null, a float, a type not listed) is returned unchanged and keeps the bind
 * path: user input never reaches SQL text through this module.
 */

const SCALAR = /^(?:U?Int(?:8|16|32|64)|DateTime(?:\('UTC'\))?)$/;
const PLACEHOLDER = /\{(\w+):([^{}]+)\}/g;

/** The statement with its integer parameters inlined, or undefined when it must keep the bind path. */
export function inlineIntegerParams(query: string, params: Record<string, unknown>): string | undefined {
  let refused = false;
  const used = new Set<string>();
  const out = query.replace(PLACEHOLDER, (whole, name: string, type: string) => {
    if (!(name in params)) {
      refused = true;
      return whole;
    }
    const literal = render(params[name], type.trim());
    if (literal === undefined) {
      refused = true;
      return whole;
    }
    used.add(name);
    return `CAST(${literal} AS ${type.trim()})`;
  });
  // A parameter the text does not use (or uses in a shape not matched above) keeps the bind
  // path too: the engine would have refused or used it, and this must not differ.
  if (refused || used.size !== Object.keys(params).length) return undefined;
  return out;
}

function render(value: unknown, type: string): string | undefined {
  if (SCALAR.test(type)) return integer(value);
  const array = /^Array\((.+)\)$/.exec(type);
  if (!array || !Array.isArray(value)) return undefined;
  const inner = array[1]!.trim();
  const parts: string[] = [];
  if (SCALAR.test(inner)) {
    for (const v of value) {
      const s = integer(v);
      if (s === undefined) return undefined;
      parts.push(s);
    }
    return `[${parts.join(',')}]`;
  }
  const tuple = /^Tuple\((.+)\)$/.exec(inner);
  if (!tuple) return undefined;
  const fields = tuple[1]!.split(',').map((f) => f.trim());
  if (!fields.every((f) => SCALAR.test(f))) return undefined;
  for (const v of value) {
    if (!Array.isArray(v) || v.length !== fields.length) return undefined;
    const items: string[] = [];
    for (const x of v) {
      const s = integer(x);
      if (s === undefined) return undefined;
      items.push(s);
    }
    parts.push(`(${items.join(',')})`);
  }
  return `[${parts.join(',')}]`;
}

function integer(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'bigint') return v.toString();
  return undefined;
}
