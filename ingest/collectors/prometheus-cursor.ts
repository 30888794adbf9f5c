/**
 * A read position in one line of an exposition, for the parser in prometheus-text.ts.
 * Every read advances or stops, so no input can make the parser loop; every failure is a
 * PromParseError carrying the line and column.
 */

/** Why an exposition was refused. Never quotes the offending text: it may be huge or hostile. */
export class PromParseError extends Error {
  override name = 'PromParseError';
  constructor(
    readonly line: number,
    readonly column: number,
    readonly reason: string,
  ) {
    super(line > 0 ? `line ${line}, column ${column}: ${reason}` : reason);
  }
}

export function isNameChar(ch: string): boolean {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch === '_';
}
function isMetricNameChar(ch: string): boolean {
  return isNameChar(ch) || ch === ':';
}
function isDigit(ch: string): boolean {
  return ch >= '0' && ch <= '9';
}
function isBlank(ch: string): boolean {
  return ch === ' ' || ch === '\t';
}

export class Cursor {
  private pos = 0;
  constructor(
    private readonly s: string,
    readonly lineNo: number,
  ) {}

  atEnd(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): string {
    return this.s[this.pos] ?? '';
  }
  next(): string {
    return this.s[this.pos++] ?? '';
  }
  column(): number {
    return this.pos + 1;
  }
  fail(reason: string, column = this.column()): never {
    throw new PromParseError(this.lineNo, column, reason);
  }
  /** Skips spaces and tabs; says whether it skipped any. */
  skipBlanks(): boolean {
    const from = this.pos;
    while (isBlank(this.peek())) this.pos++;
    return this.pos > from;
  }
  expectBlank(): void {
    if (!isBlank(this.peek())) this.fail('expected a space');
    this.skipBlanks();
  }
  expect(ch: string, reason: string): void {
    if (this.peek() !== ch) this.fail(reason);
    this.pos++;
  }
  restIsBlank(): boolean {
    this.skipBlanks();
    return this.atEnd();
  }
  readWhile(pred: (ch: string) => boolean): string {
    const from = this.pos;
    while (!this.atEnd() && pred(this.peek())) this.pos++;
    return this.s.slice(from, this.pos);
  }
  readMetricName(max: number): string {
    if (isDigit(this.peek())) return '';
    const name = this.readWhile(isMetricNameChar);
    if (name.length > max) this.fail(`metric name longer than ${max} characters`, this.pos - name.length + 1);
    return name;
  }
  readLabelName(max: number): string {
    if (isDigit(this.peek())) return '';
    const name = this.readWhile(isNameChar);
    if (name.length > max) this.fail(`label name longer than ${max} characters`, this.pos - name.length + 1);
    return name;
  }
  /** Reads up to a blank or the end, at most `max` characters (longer tokens are cut, then refused). */
  readToken(max: number): string {
    const from = this.pos;
    while (!this.atEnd() && !isBlank(this.peek()) && this.pos - from < max) this.pos++;
    return this.s.slice(from, this.pos);
  }
  /** After the opening quote: a label value with \\, \" and \n escapes, up to the closing quote. */
  readLabelValue(max: number): string {
    const startCol = this.column() - 1;
    let out = '';
    for (;;) {
      if (this.atEnd()) this.fail('unterminated label value', startCol);
      const ch = this.next();
      if (ch === '"') return out;
      if (ch === '\\') {
        const esc = this.next();
        if (esc === '\\') out += '\\';
        else if (esc === '"') out += '"';
        else if (esc === 'n') out += '\n';
        else this.fail('invalid escape sequence in label value (only \\\\, \\" and \\n are allowed)', this.pos - 1);
      } else {
        out += ch;
      }
      if (out.length > max) this.fail(`label value longer than ${max} characters`, startCol);
    }
  }
  /** The rest of a HELP line, with \\ and \n escapes. */
  readHelpText(): string {
    let out = '';
    while (!this.atEnd()) {
      const ch = this.next();
      if (ch !== '\\') {
        out += ch;
        continue;
      }
      const esc = this.next();
      if (esc === '\\') out += '\\';
      else if (esc === 'n') out += '\n';
      else this.fail('invalid escape sequence in HELP text (only \\\\ and \\n are allowed)', this.pos - 1);
    }
    return out;
  }
}
