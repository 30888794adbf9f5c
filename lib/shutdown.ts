/**
 * The steps that stop a process, run in the reverse order they were registered, each named
 * and each bounded: a part that never finishes stopping (a job stuck on an engine call, a
 * connection that never answers) is logged by name and left behind, so the rest still
 * stop and the process can exit. Leaving a part behind loses nothing acknowledged: a job
 * it held is redelivered to the next worker, and its insert is idempotent.
 */
import type { Logger } from 'pino';

/** How long one step may take before the stop goes on without it. */
export const SHUTDOWN_STEP_TIMEOUT_MS = 20_000;
/** A step slower than this is logged (at warn) even when it finishes. */
const SLOW_STEP_MS = 2_000;

export interface ShutdownStep {
  name: string;
  stop: () => Promise<unknown>;
  /** Tried (bounded too) when `stop` overruns, e.g. a BullMQ worker's close(force). */
  force?: () => Promise<unknown>;
}

export class ShutdownSteps {
  private readonly steps: ShutdownStep[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly log: Pick<Logger, 'warn' | 'error'>,
    private readonly stepTimeoutMs = SHUTDOWN_STEP_TIMEOUT_MS,
  ) {}

  add(name: string, stop: () => Promise<unknown>, force?: () => Promise<unknown>): void {
    this.steps.push({ name, stop, ...(force ? { force } : {}) });
  }

  /** Runs every step once, last registered first; a second call waits for the first. */
  run(): Promise<void> {
    this.running ??= this.runAll();
    return this.running;
  }

  private async runAll(): Promise<void> {
    for (const step of [...this.steps].reverse()) {
      const started = Date.now();
      const outcome = await settleWithin(step.stop, this.stepTimeoutMs);
      const ms = Date.now() - started;
      if (outcome.kind === 'timeout') {
        const forced = step.force ? await settleWithin(step.force, this.stepTimeoutMs) : undefined;
        const then = forced?.kind === 'done' ? 'forced it to stop' : 'going on without it';
        this.log.error({ step: step.name, ms }, `stopping ${step.name} did not finish within ${this.stepTimeoutMs} ms; ${then}`);
      } else if (outcome.kind === 'error') {
        this.log.error({ step: step.name, err: outcome.err }, `error while stopping ${step.name}`);
      } else if (ms > SLOW_STEP_MS) {
        this.log.warn({ step: step.name, ms }, `stopping ${step.name} took ${ms} ms`);
      }
    }
  }
}

type Outcome = { kind: 'done' } | { kind: 'error'; err: unknown } | { kind: 'timeout' };

async function settleWithin(stop: () => Promise<unknown>, ms: number): Promise<Outcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'timeout' }), ms);
  });
  try {
    const stopping = Promise.resolve()
      .then(stop)
      .then(
        (): Outcome => ({ kind: 'done' }),
        (err: unknown): Outcome => ({ kind: 'error', err }),
      );
    return await Promise.race([stopping, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
