import { describe, expect, it } from 'vitest';
import { InsertCoalescer } from '../workers/insert-coalescer.js';

interface Item {
  name: string;
  rows: number;
}

/** A writer that records each call and can be held open or made to fail. */
function recordingWriter(fail: (items: Item[]) => boolean = () => false) {
  const calls: string[][] = [];
  let release: () => void = () => undefined;
  let gate: Promise<void> = Promise.resolve();
  return {
    calls,
    hold() {
      gate = new Promise((r) => (release = r));
    },
    open() {
      release();
    },
    write: async (items: Item[]) => {
      calls.push(items.map((i) => i.name));
      await gate;
      if (fail(items)) throw new Error(`rejected ${items.map((i) => i.name).join('+')}`);
    },
  };
}

const item = (name: string, rows = 1000): Item => ({ name, rows });

describe('InsertCoalescer', () => {
  it('writes a lone item at once, and what arrives meanwhile together in the next write', async () => {
    const w = recordingWriter();
    const c = new InsertCoalescer<Item>({ write: w.write, rowsOf: (i) => i.rows, maxRows: 10_000 });
    w.hold();
    const first = c.submit(item('a'));
    const rest = ['b', 'c', 'd'].map((n) => c.submit(item(n)));
    expect(c.waiting).toBe(3);
    w.open();
    await Promise.all([first, ...rest]);
    expect(w.calls).toEqual([['a'], ['b', 'c', 'd']]);
  });

  it('stops a write at maxRows and keeps the order', async () => {
    const w = recordingWriter();
    const c = new InsertCoalescer<Item>({ write: w.write, rowsOf: (i) => i.rows, maxRows: 2500 });
    w.hold();
    const all = ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => c.submit(item(n)));
    w.open();
    await Promise.all(all);
    expect(w.calls).toEqual([['a'], ['b', 'c'], ['d', 'e'], ['f']]);
  });

  it('writes an item larger than maxRows alone rather than never', async () => {
    const w = recordingWriter();
    const c = new InsertCoalescer<Item>({ write: w.write, rowsOf: (i) => i.rows, maxRows: 2500 });
    await c.submit(item('huge', 50_000));
    expect(w.calls).toEqual([['huge']]);
  });

  it('retries a failed combined write one item at a time: only the poison item fails', async () => {
    const w = recordingWriter((items) => items.some((i) => i.name === 'poison'));
    const c = new InsertCoalescer<Item>({ write: w.write, rowsOf: (i) => i.rows, maxRows: 10_000 });
    w.hold();
    const first = c.submit(item('a'));
    const results = Promise.allSettled(['b', 'poison', 'c'].map((n) => c.submit(item(n))));
    w.open();
    await first;
    const settled = await results;
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason.message).toBe('rejected poison');
    expect(w.calls).toEqual([['a'], ['b', 'poison', 'c'], ['b'], ['poison'], ['c']]);
  });

  it('keeps working after a failure', async () => {
    let failing = true;
    const c = new InsertCoalescer<Item>({
      write: async () => {
        if (failing) throw new Error('engine down');
      },
      rowsOf: (i) => i.rows,
      maxRows: 10_000,
    });
    await expect(c.submit(item('a'))).rejects.toThrow('engine down');
    failing = false;
    await expect(c.submit(item('b'))).resolves.toBeUndefined();
  });
});
