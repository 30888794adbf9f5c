/**
 * Reading untrusted JSON text so that what validation sees is what the producer wrote:
 *
 * - **Bounded nesting.** A sample is three levels deep; a body nested deeper is refused
 *   before JSON.parse builds it (16 MB of `[` cost seconds and gigabytes to build).
 * - **Exact numbers.** JSON.parse turns every number into the nearest float64, so
 *   `0.10000000000000001` would arrive as 0.1 and be billed as its neighbour. A decimal of
 *   at most 15 significant digits survives decimal → float64 → shortest decimal unless its
 *   exponent leaves float64's normal range, so only a number written with more digits or
 *   with an exponent can be changed. One pass over the text (the same pass that measures
 *   nesting) looks for a run of 16 or more digits and points, or an exponent; only then
 *   does the slow path re-read the numbers, and every one a float64 does not hold exactly
 *   reaches validation as an `InexactNumber`, refused with its own text.
 */
import Big from 'big.js';
import { InexactNumber } from '../schemas/sample.js';

/** Deeper than a sample ever is (body → samples → sample → attributes) with room to spare. */
export const MAX_JSON_DEPTH = 8;

export class JsonTextError extends Error {
  override name = 'JsonTextError';
}

/** Parses one JSON text, refusing deep nesting and keeping inexact numbers visible. */
export function parseJsonText(text: string): unknown {
  const scan = scanJsonText(text);
  if (scan.tooDeep) throw new JsonTextError(`JSON nested deeper than ${MAX_JSON_DEPTH} levels is refused`);
  if (!scan.longNumber) return JSON.parse(text);
  return JSON.parse(markInexactNumbers(text), reviveInexact);
}

interface Scan {
  tooDeep: boolean;
  /** A run of 16+ digits and points, or an exponent, outside strings: a number that may not survive. */
  longNumber: boolean;
}

/** One pass, outside strings: nesting depth (stops at the limit) and long digit runs. */
export function scanJsonText(text: string): Scan {
  let depth = 0;
  let run = 0;
  let longNumber = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      // Skip the string; an unterminated one is JSON.parse's to report.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 92 /* \ */) i++;
        else if (d === 34) break;
      }
      run = 0;
      continue;
    }
    if ((c >= 48 && c <= 57) || c === 46 /* . */) {
      if (++run >= 16) longNumber = true;
      continue;
    }
    // An exponent right after digits: 7e-332 has one digit yet underflows to 0.
    if ((c === 101 || c === 69) /* e E */ && run > 0) longNumber = true;
    run = 0;
    if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > MAX_JSON_DEPTH) return { tooDeep: true, longNumber };
    } else if (c === 93 /* ] */ || c === 125 /* } */) depth--;
  }
  return { tooDeep: false, longNumber };
}

// A string token, or a number token. Scanning from the start, a `"` outside a string always
// opens one, so the alternation never mistakes a string's content for a number.
const TOKENS = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
// The marker's key, as parsed and as written in JSON text: control characters are refused
// in every string a producer sends, so no sample can carry it by accident.
const MARK = '\u0000inexact';
const MARK_JSON = '\\u0000inexact';

function markInexactNumbers(text: string): string {
  return text.replace(TOKENS, (token) => (token.charCodeAt(0) === 34 || isExactDouble(token) ? token : `{"${MARK_JSON}":"${token}"}`));
}

function reviveInexact(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && MARK in value) return new InexactNumber(String((value as Record<string, unknown>)[MARK]));
  return value;
}

/** Whether the float64 nearest to this decimal is the decimal itself. */
export function isExactDouble(token: string): boolean {
  const n = Number(token);
  if (!Number.isFinite(n)) return true; // 1e999: validation says "must be finite"
  return new Big(token).eq(new Big(String(n)));
}
