/**
 * The one rule for every identifier and label a producer or a caller hands us: ids in
 * samples, account ids in URL paths, attribute values, query parameters. The engine stores
 * what passes it byte for byte, so what ingest accepts, every route can name again.
 *
 * - Well-formed Unicode: a lone UTF-16 surrogate (JSON "\ud800") has no UTF-8 encoding;
 *   the engine refuses the whole insert it sits in.
 * - No control or format characters (Cc, Cf, line/paragraph separators): they break CSV
 *   exports, log lines and terminals, and NUL is a separator in too many tools.
 * - A length in code points (zod counts them; a surrogate pair is one), checked by each
 *   field's limit.
 */
import { z } from 'zod';

/** No control or format characters. */
export const NO_CONTROL_CHARS = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]*$/u;
/** No lone surrogate: \p{Cs} matches one, since /u reads a valid pair as one code point. */
export const WELL_FORMED = /^[^\p{Cs}]*$/u;

/** Why `s` is not acceptable text, or undefined when it is (length is the caller's rule). */
export function textProblem(s: string): string | undefined {
  if (!WELL_FORMED.test(s)) return 'must be well-formed Unicode (it holds a lone surrogate)';
  if (!NO_CONTROL_CHARS.test(s)) return 'must not contain control characters';
  return undefined;
}

/** The text rule as zod checks on a string schema, with `${label} must …` messages. */
export function printable(schema: z.ZodString, label: string): z.ZodString {
  return schema.regex(WELL_FORMED, `${label} must be well-formed Unicode (it holds a lone surrogate)`).regex(NO_CONTROL_CHARS, `${label} must not contain control characters`);
}

/** A required text field of at most `max` characters. */
export function textField(label: string, max: number): z.ZodString {
  return printable(
    z
      .string({ error: `${label} must be a string` })
      .min(1, `${label} must not be empty`)
      .max(max, `${label} must be at most ${max} characters`),
    label,
  );
}
