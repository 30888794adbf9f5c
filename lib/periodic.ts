/**
 * A task that runs on a timer until stopped: one round at a time (the next is scheduled
 * when the previous ends, so rounds never overlap), a failed round logged and retried on
 * the next tick, and `stop()` waiting for the round in progress. `kick()` asks for a round
 * sooner than the timer: at once, or `minGapMs` after the previous round ended, so that
 * work arriving steadily is picked up in rounds of a useful size.
 */
import type { Logger } from 'pino';

export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private inRound = false;
  private kicked = false;
  private nextAt = 0;
  private endedAt = 0;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly round: () => Promise<unknown>,
    private readonly log: Logger,
    private readonly minGapMs = intervalMs,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /** Run a round soon: now, or minGapMs after the last one ended (or after the current one). */
  kick(): void {
    if (this.stopped) return;
    if (this.inRound) {
      this.kicked = true;
      return;
    }
    const at = Math.max(Date.now(), this.endedAt + this.minGapMs);
    if (at < this.nextAt) this.schedule(at - Date.now());
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.nextAt = Date.now() + delayMs;
    this.timer = setTimeout(() => this.tick(), delayMs);
  }

  private tick(): void {
    if (this.stopped) return;
    this.inRound = true;
    this.kicked = false;
    this.running = this.round()
      .catch((err: unknown) => this.log.error({ err }, `${this.name} failed; retried next round`))
      .finally(() => {
        this.inRound = false;
        this.endedAt = Date.now();
        if (!this.stopped) this.schedule(this.kicked ? this.minGapMs : this.intervalMs);
      });
  }

  /** True once stop() was called: a long round can end early at a safe point. */
  get stopRequested(): boolean {
    return this.stopped;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
