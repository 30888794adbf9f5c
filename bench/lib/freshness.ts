/**
 * Freshness: how long after its 202 a sample shows in the usage API. Every `everyMs` the
 * probe POSTs one marker sample (its own resource id, `ts` = now, in a marker account) and
 * one poller asks `GET /v1/accounts/<marker>/usage?group_by=resource_id` back to back; a
 * marker is fresh when the first answer listing its resource id arrives. Resolution: one
 * poll (its own latency is reported too: that is the usage API under load).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { percentiles, type Percentiles } from './stats.js';

const HOUR_MS = 3_600_000;

export interface FreshnessResult {
  probes: number;
  visible: number;
  /** Probes never seen within the grace after the load: counted at the grace as a floor. */
  notVisible: number;
  freshnessMs: Percentiles;
  /** Freshness of probes sent in each third of the run: does it grow as the hour fills? */
  freshnessP50ByThirdMs: number[];
  ackMs: Percentiles;
  usageApiMs: Percentiles;
  usageApiErrors: number;
}

interface Probe {
  id: string;
  sentAt: number;
  ackAt?: number;
  seenAt?: number;
}

export function startFreshnessProbe(o: { url: string; /** Where it posts (default `url`). */ ingestUrl?: string; producerKey: string; billingKey: string; account: string; everyMs: number; pollPauseMs: number }) {
  const probes: Probe[] = [];
  const pollMs: number[] = [];
  let pollErrors = 0;
  let stopping = false;
  let sending = true;
  const startedAt = Date.now();
  const fromMs = Math.floor(startedAt / HOUR_MS) * HOUR_MS - HOUR_MS;

  const post = async (p: Probe) => {
    const body = JSON.stringify([{
      id: p.id, account_id: o.account, resource_id: p.id, resource_type: 'vm', region: 'eu-west-1',
      metric: 'cpu', value: 1, ts: Date.now(), interval_s: 1,
    }]);
    const res = await fetch(`${o.ingestUrl ?? o.url}/v1/samples`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${o.producerKey}` },
      body,
    });
    await res.text();
    if (res.status === 202) p.ackAt = Date.now();
  };

  const sender = (async () => {
    let k = 0;
    while (sending) {
      const p: Probe = { id: `probe-${String(++k).padStart(5, '0')}`, sentAt: Date.now() };
      probes.push(p);
      await post(p).catch(() => undefined);
      await sleep(o.everyMs);
    }
  })();

  const poller = (async () => {
    while (!stopping) {
      const pending = probes.filter((p) => p.ackAt !== undefined && p.seenAt === undefined);
      if (pending.length === 0 && !sending) break;
      const toMs = Math.ceil(Date.now() / HOUR_MS) * HOUR_MS + HOUR_MS;
      const t = performance.now();
      try {
        const res = await fetch(`${o.url}/v1/accounts/${o.account}/usage?from=${fromMs}&to=${toMs}&group_by=resource_id`, {
          headers: { authorization: `Bearer ${o.billingKey}` },
        });
        const body = (await res.json()) as { rows?: Array<{ resource_id?: string }> };
        pollMs.push(performance.now() - t);
        if (!res.ok) pollErrors++;
        const seen = new Set((body.rows ?? []).map((r) => r.resource_id));
        const now = Date.now();
        for (const p of pending) if (seen.has(p.id)) p.seenAt = now;
      } catch {
        pollErrors++;
      }
      await sleep(o.pollPauseMs);
    }
  })();

  return {
    /**
     * Stops sending markers, waits up to `graceMs` for the pending ones (less if `giveUp`
     * says the product is gone), and summarizes.
     */
    async stop(graceMs: number, giveUp: () => boolean = () => false): Promise<FreshnessResult> {
      sending = false;
      await sender;
      let deadline = Date.now() + graceMs;
      while (Date.now() < deadline && probes.some((p) => p.ackAt !== undefined && p.seenAt === undefined)) {
        if (giveUp()) deadline = Date.now();
        else await sleep(50);
      }
      stopping = true;
      await poller;
      const acked = probes.filter((p) => p.ackAt !== undefined);
      const fresh = acked.map((p) => (p.seenAt ?? deadline) - (p.ackAt as number));
      const span = Math.max(1, (acked.at(-1)?.sentAt ?? startedAt) - startedAt + 1);
      const thirds = [0, 1, 2].map((i) => {
        const part = acked.filter((p) => Math.min(2, Math.floor(((p.sentAt - startedAt) / span) * 3)) === i);
        return percentiles(part.map((p) => (p.seenAt ?? deadline) - (p.ackAt as number))).p50;
      });
      return {
        probes: probes.length,
        visible: acked.filter((p) => p.seenAt !== undefined).length,
        notVisible: acked.filter((p) => p.seenAt === undefined).length,
        freshnessMs: percentiles(fresh),
        freshnessP50ByThirdMs: thirds,
        ackMs: percentiles(acked.map((p) => (p.ackAt as number) - p.sentAt)),
        usageApiMs: percentiles(pollMs),
        usageApiErrors: pollErrors,
      };
    },
  };
}
