/**
 * A task that runs on a timer until stopped: one round at a time (the next is scheduled
 * when the previous ends, so rounds never overlap), a failed round logged and retried on
 * the next tick, and `stop()` waiting for the round in progress.
 */
import type { Logger } from 'pino';

export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly round: () => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      this.running = this.round()
        .catch((err: unknown) => this.log.error({ err }, `${this.name} failed; retried next round`))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, this.intervalMs);
        });
    };
    this.timer = setTimeout(tick, 0);
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
