import { describe, expect, it } from 'vitest';
import { ShutdownSteps } from '../lib/shutdown.js';

function recordingLog() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  return {
    lines,
    warn: (obj: Record<string, unknown>, msg: string) => void lines.push({ level: 'warn', obj, msg }),
    error: (obj: Record<string, unknown>, msg: string) => void lines.push({ level: 'error', obj, msg }),
  };
}

describe('shutdown steps', () => {
  it('stops the parts last registered first', async () => {
    const log = recordingLog();
    const order: string[] = [];
    const steps = new ShutdownSteps(log as never, 1_000);
    for (const name of ['redis', 'worker', 'http']) steps.add(name, async () => void order.push(name));
    await steps.run();
    expect(order).toEqual(['http', 'worker', 'redis']);
    expect(log.lines).toEqual([]);
  });

  it('goes on without a part that never stops, and names it', async () => {
    const log = recordingLog();
    const order: string[] = [];
    const steps = new ShutdownSteps(log as never, 50);
    steps.add('redis', async () => void order.push('redis'));
    steps.add('batch worker', () => new Promise(() => undefined)); // never settles
    steps.add('http', async () => void order.push('http'));
    await steps.run();
    expect(order).toEqual(['http', 'redis']);
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatchObject({ level: 'error', obj: { step: 'batch worker' } });
    expect(log.lines[0]!.msg).toContain('stopping batch worker did not finish within 50 ms');
  });

  it('forces a part that overruns its stop when it can be forced', async () => {
    const log = recordingLog();
    let forced = false;
    const steps = new ShutdownSteps(log as never, 50);
    steps.add('batch worker', () => new Promise(() => undefined), async () => void (forced = true));
    await steps.run();
    expect(forced).toBe(true);
    expect(log.lines.map((l) => l.msg)).toEqual(['stopping batch worker did not finish within 50 ms; forced it to stop']);
  });

  it('logs a failing step by name and still runs the others, once however often it is asked', async () => {
    const log = recordingLog();
    let redisStops = 0;
    const steps = new ShutdownSteps(log as never, 1_000);
    steps.add('redis', async () => void redisStops++);
    steps.add('collector', () => {
      throw new Error('boom'); // a synchronous throw counts as a failure too
    });
    await Promise.all([steps.run(), steps.run()]);
    await steps.run();
    expect(redisStops).toBe(1);
    expect(log.lines.map((l) => [l.level, l.obj.step, l.msg])).toEqual([['error', 'collector', 'error while stopping collector']]);
  });
});
