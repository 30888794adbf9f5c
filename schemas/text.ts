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

/** What a value breaking the rule is told, after its name. */
export const TEXT_RULE_MESSAGES = {
  wellFormed: 'must be well-formed Unicode (it holds a lone surrogate)',
  noControl: 'must not contain control characters',
} as const;

/** The text rule as zod checks on a string schema, with `${label} must …` messages (no label: bare). */
export function printable(schema: z.ZodString, label?: string): z.ZodString {
  const named = (m: string) => (label ? `${label} ${m}` : m);
  return schema.regex(WELL_FORMED, named(TEXT_RULE_MESSAGES.wellFormed)).regex(NO_CONTROL_CHARS, named(TEXT_RULE_MESSAGES.noControl));
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
