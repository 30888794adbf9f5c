import pino from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { PeriodicTask } from '../lib/periodic.js';

const log = pino({ level: 'silent' });

describe('PeriodicTask', () => {
  let task: PeriodicTask | undefined;
  afterEach(async () => {
    await task?.stop();
  });

  it('runs on its interval, and a kick brings the next round forward', async () => {
    const rounds: number[] = [];
    task = new PeriodicTask('t', 60_000, async () => void rounds.push(Date.now()), log, 30);
    task.start();
    await sleep(50);
    expect(rounds).toHaveLength(1); // the first round at once, the next not for a minute
    const kickedAt = Date.now();
    task.kick();
    await sleep(100);
    expect(rounds).toHaveLength(2);
    expect(rounds[1]! - kickedAt).toBeLessThan(60_000);
  });

  it('keeps minGapMs between rounds however often it is kicked', async () => {
    const starts: number[] = [];
    const ends: number[] = [];
    task = new PeriodicTask('t', 60_000, async () => {
      starts.push(Date.now());
      await sleep(20);
      ends.push(Date.now());
    }, log, 80);
    task.start();
    const until = Date.now() + 600;
    while (Date.now() < until) {
      task.kick(); // also while a round runs: it is then run minGapMs after that round
      await sleep(5);
    }
    expect(starts.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - ends[i - 1]!).toBeGreaterThanOrEqual(75);
  });

  it('never overlaps rounds, and stop waits for the one running', async () => {
    let running = 0;
    let maxRunning = 0;
    let finished = 0;
    task = new PeriodicTask('t', 1, async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(30);
      running--;
      finished++;
    }, log, 0);
    task.start();
    for (let i = 0; i < 20; i++) {
      task.kick();
      await sleep(3);
    }
    await task.stop();
    expect(maxRunning).toBe(1);
    expect(running).toBe(0);
    expect(finished).toBeGreaterThan(0);
  });
});
