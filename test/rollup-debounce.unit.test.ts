import { describe, expect, it } from 'vitest';
import { RollupDebounce } from '../workers/rollup-debounce.js';

describe('rollup debounce', () => {
  it('waits until an hour is quiet', () => {
    const d = new RollupDebounce(1000, 5000);
    expect(d.isDue(10, '1', 0)).toBe(false); // just seen
    expect(d.isDue(10, '2', 600)).toBe(false); // still receiving data
    expect(d.isDue(10, '2', 1500)).toBe(false); // quiet for 900 ms only
    expect(d.isDue(10, '2', 1600)).toBe(true); // quiet for 1 s
  });

  it('recomputes a steadily fed hour after the maximum delay', () => {
    const d = new RollupDebounce(1000, 5000);
    let due = false;
    for (let t = 0, g = 1; t <= 5000 && !due; t += 500, g++) due = d.isDue(7, String(g), t);
    expect(due).toBe(true);
    expect(d.isDue(8, '1', 0)).toBe(false); // other hours keep their own clock
  });

  it('starts afresh after a recomputation, and never waits when quiet is 0', () => {
    const d = new RollupDebounce(1000, 5000);
    d.isDue(3, '1', 0);
    expect(d.isDue(3, '1', 1000)).toBe(true);
    d.forget(3);
    expect(d.isDue(3, '2', 1001)).toBe(false);
    expect(new RollupDebounce(0, 0).isDue(3, '1', 0)).toBe(true);
  });
});
