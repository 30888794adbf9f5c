/**
 * A batch the engine refuses for its data is isolated, never a global stall. Ingest
 * validation now refuses everything we know the engine would (roundtrip property test), so
 * the poison here is put on the queue the way an older release or an encoding bug would:
 * a job whose rows the engine cannot parse, next to good rows of other accounts.
 *
 * What must hold: the good rows of the batch and every later batch are billed exactly and
 * promptly; other accounts' `complete` never notices; the poisoned account's range says
 * `complete: false` with the reason and the quarantine id; the quarantine lists, shows,
 * replays and discards; and a billing period closes without waiting for quarantined rows,
 * which, replayed after the close, are billed as adjustments like any late sample.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportDigest } from '../../domain/period-export.js';
import { encodeRawRow, decodeRawRow } from '../../schemas/raw-row.js';
import { batchJobOf } from '../support/batch-job.js';
import { expectedTotals, type SentSample } from '../support/oracle.js';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const monthStart = (ms: number, add = 0) => Date.UTC(new Date(ms).getUTCFullYear(), new Date(ms).getUTCMonth() + add, 1);
const NOW = Date.now();
const THIS_MONTH = monthStart(NOW);
const LAST_MONTH = monthStart(NOW, -1);
const label = (ms: number) => new Date(ms).toISOString().slice(0, 7);
// An hour of last month (closes at once with no grace) and one of this month (stays open).
const OLD_HOUR = LAST_MONTH + 3 * 3_600_000;
const NEW_HOUR = Math.min(THIS_MONTH + 3 * 3_600_000, Math.floor(NOW / 3_600_000) * 3_600_000 - 3_600_000);

let n = 0;
const sample = (account: string, hour: number, value = 1): SentSample & Record<string, unknown> => {
  n++;
  return { id: `poison-${n}`, account_id: account, resource_id: `vm-${account}`, resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value, ts: hour + 60_000 + n, interval_s: 60 };
};

describe('a poison batch is isolated', () => {
  let p: TestPipeline;
  const billed: SentSample[] = []; // acknowledged samples the engine stores, in acceptance order

  /** Puts a batch on the queue as ingest would, but with rows the engine refuses. */
  async function enqueuePoison(good: SentSample[], poison: { sample: SentSample; corrupt: (encodedRow: string) => string }[]): Promise<string> {
    const job = await batchJobOf(p, [...good, ...poison.map((x) => x.sample)]);
    const batchId = job.batchId;
    const lines = job.rows.split('\n').filter(Boolean);
    for (let i = 0; i < poison.length; i++) lines[good.length + i] = poison[i]!.corrupt(lines[good.length + i]!);
    await p.queue!.add('batch', { ...job, rows: lines.join('\n') + '\n' }, { jobId: batchId });
    billed.push(...good);
    return batchId;
  }

  const usage = async (account: string, from: number, to: number) => (await p.get(`/v1/accounts/${account}/usage?from=${from}&to=${to}`)).body;
  const api = async (method: string, path: string) => {
    const res = await fetch(`${p.url}${path}`, { method, headers: { authorization: `Bearer ${KEYS.billing}` } });
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    p = await startTestPipeline('adv-poison', { PERIOD_GRACE_HOURS: '0', PERIOD_CLOSE_INTERVAL_MS: '100', JOB_ATTEMPTS: '3' });
  });
  afterAll(async () => {
    await p?.stop();
  });

  let surrogateId: string;
  let hourId: string;

  it('writes the good rows, quarantines the refused ones, and other accounts never notice', async () => {
    // acct-c also has on-time usage last month, so that period has something to close.
    const before = [sample('acct-a', NEW_HOUR), sample('acct-b', NEW_HOUR, 2), sample('acct-c', OLD_HOUR, 1)];
    expect((await p.post(before)).status).toBe(202);
    billed.push(...before);

    // A lone surrogate written raw into the row: "missing second part of surrogate pair".
    const lone = sample('acct-p', NEW_HOUR, 5);
    surrogateId = await enqueuePoison([sample('acct-c', NEW_HOUR, 3), sample('acct-p', NEW_HOUR, 7)], [
      { sample: lone, corrupt: (row) => row.replace(`"${lone.resource_id}"`, '"vm-\\ud800"') },
    ]);
    // An hour the engine cannot parse: the sample itself is fine, its encoding is not.
    const badHour = sample('acct-q', OLD_HOUR, 11);
    hourId = await enqueuePoison([sample('acct-c', NEW_HOUR, 4)], [
      { sample: badHour, corrupt: (row) => encodeRawRow({ ...decodeRawRow(row), usage_hour: 'not an hour' as unknown as number }) },
    ]);
    const after = [sample('acct-a', NEW_HOUR, 0.5), sample('acct-b', NEW_HOUR, 0.25)];
    expect((await p.post(after)).status).toBe(202);
    billed.push(...after);

    // No stall: the pipeline drains, well inside a job's retry schedule.
    await p.waitIdle(30_000);
    const to = NEW_HOUR + 3_600_000;
    const inRange = (s: SentSample) => (s.ts as number) > NEW_HOUR && (s.ts as number) <= to;
    for (const account of ['acct-a', 'acct-b', 'acct-c']) {
      const u = await usage(account, NEW_HOUR, to);
      expect(u.complete, account).toBe(true);
      expect(new Map(u.rows.map((r: any) => [`${account}|${r.metric}`, r.base_total]))).toEqual(expectedTotals(billed.filter((s) => s.account_id === account && inRange(s))));
    }
    const pUsage = await usage('acct-p', NEW_HOUR, to);
    expect(pUsage.complete).toBe(false);
    expect(pUsage.incomplete_reasons).toEqual([
      expect.objectContaining({ code: 'quarantined', quarantine_ids: [surrogateId], message: expect.stringContaining('CANNOT_PARSE_ESCAPE_SEQUENCE') }),
    ]);
    // acct-p's good row in the same batch is billed.
    expect(new Map(pUsage.rows.map((r: any) => [`acct-p|${r.metric}`, r.base_total]))).toEqual(expectedTotals(billed.filter((s) => s.account_id === 'acct-p')));
    // The same account in a range without quarantined rows is complete.
    expect((await usage('acct-p', NEW_HOUR + 3_600_000, NEW_HOUR + 7_200_000)).complete).toBe(true);
  });

  it('lists and shows quarantined rows, and replays only what validation now accepts', async () => {
    const list = await api('GET', '/v1/quarantine');
    expect(list.status).toBe(200);
    expect(list.body.total_rows).toBe(2);
    // Oldest first; the two jobs may be written in either order.
    const entries = new Map(list.body.entries.map((e: any) => [e.id, e]));
    expect(list.body.entries).toHaveLength(2);
    expect((entries.get(surrogateId) as any).accounts.map((a: any) => a.account)).toEqual(['acct-p']);
    expect((entries.get(hourId) as any).accounts).toEqual([{ account: 'acct-q', hours: [new Date(Math.floor((OLD_HOUR + 60_000) / 3_600_000) * 3_600_000).toISOString()] }]);

    // The same through the command line, beside the running pipeline.
    const cli = (...args: string[]) =>
      spawnSync('node', ['--import', 'tsx', 'cli/main.ts', 'quarantine', ...args], {
        cwd: path.resolve(import.meta.dirname, '../..'),
        env: { ...process.env, KEY_PREFIX: p.config.KEY_PREFIX, REDIS_URL: p.config.REDIS_URL ?? 'redis://127.0.0.1:6379', DATA_DIR: p.dataDir },
        encoding: 'utf8',
      });
    const listed = cli('list', '--json');
    expect(listed.status, listed.stderr).toBe(0);
    const listedJson = JSON.parse(listed.stdout);
    expect(listedJson.total_rows).toBe(2);
    expect(listedJson.entries.map((e: { id: string }) => e.id).sort()).toEqual([surrogateId, hourId].sort());
    const cliShow = cli('show', surrogateId);
    expect(cliShow.status).toBe(0);
    expect(cliShow.stdout).toContain('CANNOT_PARSE_ESCAPE_SEQUENCE');
    expect(cli('show', randomUUID()).status).toBe(1);
    expect(cli('frobnicate').status).toBe(2);

    const shown = await api('GET', `/v1/quarantine/${surrogateId}`);
    expect(shown.status).toBe(200);
    expect(shown.body.samples).toHaveLength(1);
    expect(shown.body.reason).toMatch(/^CANNOT_PARSE_ESCAPE_SEQUENCE/);

    // The surrogate is refused by today's validation: it stays, with that reason.
    const replay = await api('POST', `/v1/quarantine/${surrogateId}/replay`);
    expect(replay.status).toBe(200);
    expect(replay.body).toMatchObject({ accepted: 0, remaining: 1 });
    expect(replay.body.rejected[0].errors[0].message).toBe('resource_id must be well-formed Unicode (it holds a lone surrogate)');

    const discard = await api('DELETE', `/v1/quarantine/${surrogateId}`);
    expect(discard.body).toEqual({ id: surrogateId, discarded: 1 });
    expect((await api('GET', `/v1/quarantine/${surrogateId}`)).status).toBe(404);
    expect((await api('GET', '/v1/quarantine/not-a-uuid')).status).toBe(400);
    await p.waitIdle();
    expect((await usage('acct-p', NEW_HOUR, NEW_HOUR + 3_600_000)).complete).toBe(true);
  });

  it('closes a period without waiting for quarantined rows; replayed later, they are billed as adjustments', async () => {
    // acct-q's only row is quarantined in last month: the period closes regardless.
    let periods: any[] = [];
    for (let i = 0; i < 300; i++) {
      periods = (await usage('acct-c', LAST_MONTH, monthStart(NOW, 1))).periods;
      if (periods.find((x) => x.period === label(LAST_MONTH))?.status === 'closed') break;
      await sleep(100);
    }
    expect(periods.find((x) => x.period === label(LAST_MONTH))?.status).toBe('closed');
    const digest = await exportDigest(p.ch!, label(LAST_MONTH));
    const qBefore = await usage('acct-q', LAST_MONTH, THIS_MONTH);
    expect(qBefore.complete).toBe(false);
    expect(qBefore.incomplete_reasons[0].quarantine_ids).toEqual([hourId]);

    const replay = await api('POST', `/v1/quarantine/${hourId}/replay`);
    expect(replay.body).toMatchObject({ accepted: 1, remaining: 0, rejected: [] });
    await p.waitIdle();

    // The closed period is untouched; the sample is an adjustment in the first open period.
    expect(await exportDigest(p.ch!, label(LAST_MONTH))).toBe(digest);
    const q = await usage('acct-q', LAST_MONTH, monthStart(NOW, 1));
    expect(q.complete).toBe(true);
    expect(q.adjustments).toEqual([expect.objectContaining({ original_period: label(LAST_MONTH), metric: 'cpu', base_total: '11' })]);
    expect((await api('GET', '/v1/quarantine')).body.total_rows).toBe(0);
  });
});
