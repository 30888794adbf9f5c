/**
 * CSV cells, as every CSV the product writes them (billing export, account export,
 * datasets, the CLI). RFC 4180 quoting, and OWASP's CSV-injection rule: a spreadsheet
 * evaluates a cell that begins with `=`, `+`, `-`, `@`, tab or carriage return as a
 * formula (`=HYPERLINK(…)` in an account or resource id, opened by someone in finance), so
 * such a cell gets a leading single quote and is quoted: `"'=HYPERLINK(…)"`. NUL is
 * treated the same (ASVS 1.2.10), for rows stored before ids were checked for it.
 *
 * Numbers are not formulas: a cell that is a plain decimal number (`-1.5`, `42`, `1e-3`) is
 * written as it is, so quantities stay numbers in a spreadsheet and the bytes of every
 * numeric cell are what they were before this rule. Only text is ever changed, so a text
 * id such as `-2+3` or `+1` is neutralized while the number `-2` is not.
 */

/** The characters that make a spreadsheet read a cell as a formula when they lead it. */
const FORMULA_START = /^[=+\-@\t\r\0]/;
/** A plain decimal number (negative allowed, exponent allowed; a leading + is not how numbers are written here): data, not a formula. */
const PLAIN_NUMBER = /^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$/;
/** Characters that make RFC 4180 quoting necessary. */
const NEEDS_QUOTES = /[",\n\r]/;

/** Whether a text cell would be read as a formula. */
export function isFormulaLike(text: string): boolean {
  return FORMULA_START.test(text) && !PLAIN_NUMBER.test(text);
}

const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** One cell: absent → empty; objects as JSON; formula-like text neutralized and quoted. */
export function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (isFormulaLike(s)) return quote(`'${s}`);
  return NEEDS_QUOTES.test(s) ? quote(s) : s;
}

/** One line of cells, newline-terminated. */
export function csvLine(cells: readonly unknown[]): string {
  return cells.map(csvCell).join(',') + '\n';
}

/**
 * The same rule over CSV another writer produced (ClickHouse's CSVWithNames: strings
 * quoted, numbers bare), rewritten as it streams: each field is read whole (quotes and
 * doubled quotes understood, newlines inside quotes kept), and only a formula-like one is
 * changed, to `"'…"`. Every other byte passes through unchanged, so a file without such
 * cells comes out identical.
 */
export async function* neutralizeCsv(source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8');
  let field = ''; // the raw text of the field being read (quotes included)
  let content = ''; // its value (quotes removed)
  let quoted = false;
  let inQuotes = false;
  let quoteSeen = false; // inside quotes: the last character was a quote (end, or the first of "")
  let out = '';

  const endField = () => {
    out += isFormulaLike(content) ? quote(`'${content}`) : field;
    field = '';
    content = '';
    quoted = false;
    inQuotes = false;
    quoteSeen = false;
  };

  const feed = (text: string) => {
    for (const ch of text) {
      if (inQuotes) {
        if (quoteSeen) {
          quoteSeen = false;
          if (ch === '"') {
            field += ch;
            content += '"';
            continue;
          }
          inQuotes = false; // the quote before closed the field's quoted part
        } else if (ch === '"') {
          field += ch;
          quoteSeen = true;
          continue;
        } else {
          field += ch;
          content += ch;
          continue;
        }
      }
      if (ch === ',' || ch === '\n' || ch === '\r') {
        endField();
        out += ch;
      } else if (ch === '"' && field === '') {
        field = ch;
        quoted = true;
        inQuotes = true;
      } else {
        field += ch;
        // Text after a closing quote is malformed CSV; kept as written, never reinterpreted.
        if (!quoted) content += ch;
      }
    }
  };

  for await (const chunk of source) {
    feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    if (out) {
      yield out;
      out = '';
    }
  }
  feed(decoder.decode());
  if (field !== '' || quoted) endField();
  if (out) yield out;
}
