/**
 * Stage 5b: one stored account's 30-day usage (the query stage 5 times on an idle pipeline),
 * asked back to back through the running product while the load generator feeds it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { percentiles, type Percentiles } from './stats.js';

export interface AccountProbeOptions {
  url: string;
  billingKey: string;
  /** Accounts to pick from at random, one per request (stored history, not the run's own). */
  accounts: string[];
  fromMs: number;
  toMs: number;
  pauseMs: number;
}

export interface AccountProbeResult {
  usageMs: Percentiles;
  errors: number;
  /** Rows in the last answer: the query read real stored usage, not an empty account. */
  rows: number;
}

export function startAccountProbe(o: AccountProbeOptions): { stop(): Promise<AccountProbeResult> } {
  let stopping = false;
  const ms: number[] = [];
  let errors = 0;
  let rows = 0;
  const poller = (async () => {
    while (!stopping) {
      const account = o.accounts[Math.floor(Math.random() * o.accounts.length)]!;
      const t = performance.now();
      try {
        const res = await fetch(`${o.url}/v1/accounts/${account}/usage?from=${o.fromMs}&to=${o.toMs}`, { headers: { authorization: `Bearer ${o.billingKey}` } });
        const body = (await res.json()) as { rows?: unknown[] };
        ms.push(performance.now() - t);
        if (res.ok) rows = body.rows?.length ?? 0;
        else errors++;
      } catch {
        errors++;
      }
      await sleep(o.pauseMs);
    }
  })();
  return {
    async stop() {
      stopping = true;
      await poller;
      return { usageMs: percentiles(ms), errors, rows };
    },
  };
}
