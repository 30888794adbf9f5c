/**
 * Splits a byte stream into lines without ever holding more than one bounded line.
 * readline would buffer a newline-free file of any size whole; an import file is untrusted,
 * so a line longer than `maxLineLength` is reported (`tooLong`) and its text discarded.
 */
import { StringDecoder } from 'node:string_decoder';

export type LineItem = { line: number; text: string } | { line: number; tooLong: true };

export async function* readLines(source: AsyncIterable<Buffer | string>, maxLineLength: number): AsyncGenerator<LineItem> {
  const decoder = new StringDecoder('utf8');
  let buf = '';
  let lineNo = 0;
  let overflow = false; // the current line already passed the limit; the rest of it is dropped
  const finish = (text: string): LineItem => {
    lineNo++;
    if (overflow || text.length > maxLineLength) {
      overflow = false;
      return { line: lineNo, tooLong: true };
    }
    if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1); // byte-order mark
    return { line: lineNo, text: text.endsWith('\r') ? text.slice(0, -1) : text };
  };
  for await (const chunk of source) {
    buf += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      yield finish(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    if (buf.length > maxLineLength) {
      overflow = true;
      buf = '';
    }
  }
  buf += decoder.end();
  if (buf.length > 0 || overflow) yield finish(buf);
}
