/**
 * Analytics labels from shared values only, from the attacker's side: a producer key that
 * can invent accounts tries to get an identifier published as a cohort label (a "region"
 * equal to an account id, instance types equal to account ids, a victim's id sent by many
 * fake accounts). A label value is published as written only if it is on the allow-list
 * or at least k accounts share it in the hour, and never if it is an account or resource
 * id; otherwise it becomes '*' and goes down the generalization ladder. The expectations
 * come from a reference implementation of those rules written here, over what was sent,
 * and the leak scanner must flag such a value if one ever got through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../../lib/clickhouse.js';
import { scanAnalytics } from '../../queries/leak-scan.js';
import { DEFAULT_ANALYTICS_LABEL_PATTERN, loadConfig } from '../../schemas/config.js';
import { rollupAnalytics } from '../../workers/rollup.js';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const K = 5;
const HOUR = 3_600_000;
const current = Math.floor(Date.now() / HOUR) * HOUR;
// One hour per scenario, so that no scenario's values are shared with another's.
const VICTIM_HOUR = current - 6 * HOUR;
const REGION_ATTACK_HOUR = current - 5 * HOUR;
const TYPE_ATTACK_HOUR = current - 4 * HOUR;
const RARE_HOUR = current - 3 * HOUR;

interface Resource {
  hour: number;
  account: string;
  resource: string;
  region: string;
  zone?: string;
  instanceType?: string;
  value: number;
}

const sent: Resource[] = [];
let seq = 0;
function add(hour: number, account: string, region: string, attrs: { zone?: string; instanceType?: string } = {}): void {
  seq++;
  sent.push({ hour, account, resource: `vm-${account}`, region, ...attrs, value: 100 + seq });
}
const toSample = (r: Resource) => ({
  id: `${r.account}-${r.hour}`, account_id: r.account, resource_id: r.resource, resource_type: 'vm', region: r.region, metric: 'cpu',
  value: r.value, ts: r.hour + HOUR - 1000, interval_s: 60,
  ...(r.zone || r.instanceType ? { attributes: { ...(r.zone ? { zone: r.zone } : {}), ...(r.instanceType ? { instance_type: r.instanceType } : {}) } } : {}),
});

// The victim: a real account, active in another hour only.
add(VICTIM_HOUR, 'acct-victim', 'eu-west-1', { zone: 'eu-west-1a', instanceType: 'm5.large' });
// 12 fake accounts acct-1 … acct-12, each sending region "acct-1".
for (let i = 1; i <= 12; i++) add(REGION_ATTACK_HOUR, `acct-${i}`, 'acct-1');
// …beside 6 honest accounts, whose cell must come out untouched.
for (let i = 1; i <= 6; i++) add(REGION_ATTACK_HOUR, `acct-honest-r${i}`, 'eu-west-1', { zone: 'eu-west-1b', instanceType: 'c5.xlarge' });
// 12 fake accounts with identifier instance types: 6 send their own account id, 6 the
// victim's (a value 6 ≥ k accounts share, but an account id all the same).
for (let i = 1; i <= 12; i++) {
  const account = `fake-${String(i).padStart(2, '0')}`;
  add(TYPE_ATTACK_HOUR, account, 'eu-west-1', { zone: 'eu-west-1a', instanceType: i <= 6 ? account : 'acct-victim' });
}
// Rare values: an on-premises site of 3 accounts and another of 2 (not on the allow-list:
// both become '*' and pool into one cell of 5), a real but rare cloud region of 2 accounts
// (on the allow-list: kept, and its cell of 2 suppressed), and 6 accounts in eu-west-1.
for (let i = 1; i <= 3; i++) add(RARE_HOUR, `acct-dc7-${i}`, 'onprem-dc7');
for (let i = 1; i <= 2; i++) add(RARE_HOUR, `acct-dc9-${i}`, 'onprem-dc9');
for (let i = 1; i <= 2; i++) add(RARE_HOUR, `acct-aps2-${i}`, 'ap-south-2');
for (let i = 1; i <= 6; i++) add(RARE_HOUR, `acct-euw-${i}`, 'eu-west-1');

interface Cell {
  region: string;
  zone: string;
  instance_type: string;
  accounts: number;
  total: string;
  generalized: number;
}
interface Report {
  resources_total: number;
  resources_generalized: number;
  resources_zone_generalized: number;
  resources_label_generalized: number;
  label_values_generalized: number;
  resources_suppressed: number;
}

/**
 * The rules, restated: label values, then the ladder (instance_type, then zone, to '*'),
 * then suppression. Every resource here is a VM with one cpu sample, one per account.
 */
function reference(resources: Resource[], identifiers: Set<string>, allow: { pattern: RegExp; values: string[] }): { cells: Cell[]; report: Report } {
  const shape = (v: string) => /^[a-z0-9][a-z0-9._-]{0,39}$/.test(v) && !/^[0-9]+(\.[0-9]+){3}$/.test(v) && !/[a-z0-9]{16,}/.test(v);
  const attr = (v: string | undefined) => (v === undefined || v === '' ? 'unknown' : shape(v) ? v : 'other');
  const rows = resources.map((r) => ({ ...r, region: r.region, zone: attr(r.zone), instanceType: attr(r.instanceType) }));
  const holders = (pick: (r: (typeof rows)[number]) => string, v: string) => new Set(rows.filter((r) => pick(r) === v).map((r) => r.account)).size;
  const withheld = new Set<string>();
  const publish = (dim: string, v: string, pick: (r: (typeof rows)[number]) => string) => {
    const ok = !identifiers.has(v) && (['other', 'unknown', '*'].includes(v) || (shape(v) && (allow.values.includes(v) || allow.pattern.test(v) || holders(pick, v) >= K)));
    if (!ok) withheld.add(`${dim}=${v}`);
    return ok ? v : '*';
  };
  const labelled = rows.map((r) => {
    const region = publish('region', r.region, (x) => x.region);
    const zone = publish('zone', r.zone, (x) => x.zone);
    const instanceType = publish('instance_type', r.instanceType, (x) => x.instanceType);
    return { ...r, region, zone, instanceType, labelGeneralized: region !== r.region || zone !== r.zone || instanceType !== r.instanceType };
  });
  const accountsBy = (xs: typeof labelled, key: (r: (typeof labelled)[number]) => string) => {
    const m = new Map<string, Set<string>>();
    for (const r of xs) m.set(key(r), (m.get(key(r)) ?? new Set()).add(r.account));
    return (r: (typeof labelled)[number]) => m.get(key(r))!.size;
  };
  const n0 = accountsBy(labelled, (r) => `${r.region}|${r.zone}|${r.instanceType}`);
  const small = labelled.filter((r) => n0(r) < K);
  const n1 = accountsBy(small, (r) => `${r.region}|${r.zone}`);
  const cells = labelled.map((r) =>
    n0(r) >= K ? { ...r, level: 0 } : n1(r) >= K ? { ...r, instanceType: '*', level: 1 } : { ...r, zone: '*', instanceType: '*', level: 2 },
  );
  const byCell = new Map<string, typeof cells>();
  for (const c of cells) byCell.set(`${c.region}|${c.zone}|${c.instanceType}`, [...(byCell.get(`${c.region}|${c.zone}|${c.instanceType}`) ?? []), c]);
  const published: Cell[] = [];
  let suppressed = 0;
  for (const members of byCell.values()) {
    const accounts = new Set(members.map((m) => m.account)).size;
    if (accounts < K) {
      suppressed += members.length;
      continue;
    }
    const m = members[0]!;
    published.push({
      region: m.region, zone: m.zone, instance_type: m.instanceType, accounts, total: String(members.reduce((n, x) => n + x.value, 0)),
      generalized: members.some((x) => x.level > 0 || x.labelGeneralized) ? 1 : 0,
    });
  }
  const order = (c: Cell) => `${c.region}|${c.zone}|${c.instance_type}`;
  return {
    cells: published.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0)),
    report: {
      resources_total: cells.length,
      resources_generalized: cells.filter((c) => c.level >= 1).length,
      resources_zone_generalized: cells.filter((c) => c.level === 2).length,
      resources_label_generalized: labelled.filter((r) => r.labelGeneralized).length,
      label_values_generalized: withheld.size,
      resources_suppressed: suppressed,
    },
  };
}

const DEFAULT_ALLOW = { pattern: new RegExp(DEFAULT_ANALYTICS_LABEL_PATTERN), values: [] as string[] };
// Every account and resource id billing holds: the samples are all there is.
const IDENTIFIERS = new Set(sent.flatMap((r) => [r.account, r.resource]));
const hourParam = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

describe('analytics labels under attack', () => {
  let p: TestPipeline;

  const published = (hour: number) =>
    queryRows<Cell>(
      p.ch!,
      `SELECT region, zone, instance_type, accounts, toString(total) AS total, generalized FROM analytics.fleet_usage_hourly
       WHERE hour = {hour:String} AND metric = 'cpu' ORDER BY region, zone, instance_type`,
      { hour: hourParam(hour) },
    );
  const report = async (hour: number) =>
    (
      await queryRows<Report>(
        p.ch!,
        `SELECT resources_total, resources_generalized, resources_zone_generalized, resources_label_generalized, label_values_generalized,
                resources_suppressed
         FROM analytics.suppression_hourly FINAL WHERE hour = {hour:String} AND metric = 'cpu'`,
        { hour: hourParam(hour) },
      )
    )[0];
  const expected = (hour: number, allow = DEFAULT_ALLOW) => reference(sent.filter((r) => r.hour === hour), IDENTIFIERS, allow);

  beforeAll(async () => {
    p = await startTestPipeline('analytics-labels', { K_ANONYMITY: String(K) });
    // The victim first, so its id is in billing before the attack's hour is analysed.
    expect((await p.post(sent.filter((r) => r.hour === VICTIM_HOUR).map(toSample))).status).toBe(202);
    await p.waitIdle();
    const res = await p.post(sent.filter((r) => r.hour !== VICTIM_HOUR).map(toSample));
    expect(res.status).toBe(202);
    expect(res.body.rejected).toEqual([]);
    await p.waitIdle();
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('never publishes a region equal to an account id, though 12 accounts send it', async () => {
    const want = expected(REGION_ATTACK_HOUR);
    const got = await published(REGION_ATTACK_HOUR);
    expect(got).toEqual(want.cells);
    expect(got.map((c) => c.region)).not.toContain('acct-1');
    // The fake accounts are still counted, under '*'; the honest cell is untouched.
    expect(got.find((c) => c.region === '*')?.accounts).toBe(12);
    expect(got.find((c) => c.region === 'eu-west-1')).toMatchObject({ accounts: 6, generalized: 0, instance_type: 'c5.xlarge' });
    expect(await report(REGION_ATTACK_HOUR)).toEqual(want.report);
    expect(want.report.resources_label_generalized).toBe(12);
  });

  it('never publishes instance types equal to account ids, whether each account sends its own or many send a victim’s', async () => {
    const want = expected(TYPE_ATTACK_HOUR);
    const got = await published(TYPE_ATTACK_HOUR);
    expect(got).toEqual(want.cells);
    const labels = got.flatMap((c) => [c.region, c.zone, c.instance_type]);
    for (const id of IDENTIFIERS) expect(labels).not.toContain(id);
    expect(await report(TYPE_ATTACK_HOUR)).toEqual(want.report);
    expect(want.report.label_values_generalized).toBe(7); // six own ids and the victim's
  });

  it('generalizes a rare value off the allow-list to *, and keeps a rare value on it', async () => {
    const want = expected(RARE_HOUR);
    const got = await published(RARE_HOUR);
    expect(got).toEqual(want.cells);
    // The two on-premises sites pool into one region '*' cell of 5 accounts; ap-south-2
    // (allow-listed) keeps its name and, with 2 accounts, is suppressed.
    expect(got.map((c) => [c.region, c.accounts])).toEqual([['*', 5], ['eu-west-1', 6]]);
    expect(await report(RARE_HOUR)).toEqual(want.report);
  });

  it('publishes an operator-listed value as written (ANALYTICS_LABEL_VALUES)', async () => {
    const config = loadConfig({}, { ANALYTICS_LABEL_VALUES: 'onprem-dc7, onprem-dc9', K_ANONYMITY: String(K) });
    const labelAllowList = { pattern: config.ANALYTICS_LABEL_PATTERN, values: config.ANALYTICS_LABEL_VALUES };
    await rollupAnalytics(p.ch!, RARE_HOUR / 1000, Date.now() * 1000, { k: config.K_ANONYMITY, analyticsAttributes: config.ANALYTICS_ATTRIBUTES, labelAllowList });
    const want = expected(RARE_HOUR, { pattern: new RegExp(config.ANALYTICS_LABEL_PATTERN), values: [...config.ANALYTICS_LABEL_VALUES] });
    // Now neither site is generalized: each is a cell under k, suppressed by the ladder.
    expect(want.report.resources_label_generalized).toBe(0);
    expect(await published(RARE_HOUR)).toEqual(want.cells);
    expect(await report(RARE_HOUR)).toEqual(want.report);
    // Back to the deployment's own rules for the scans below.
    await rollupAnalytics(p.ch!, RARE_HOUR / 1000, Date.now() * 1000 + 1, { k: K, analyticsAttributes: config.ANALYTICS_ATTRIBUTES });
    expect(await published(RARE_HOUR)).toEqual(expected(RARE_HOUR).cells);
  });

  it('leaves nothing for the leak scanner, which flags such labels if one ever gets through', async () => {
    expect((await scanAnalytics(p.ch!)).hits).toEqual([]);
    // Plant what the rules withheld: the attack's region, and a rare site name in its hour.
    const planted = (hour: number, region: string) => ({ hour: hour / 1000, region, zone: 'unknown', resource_type: 'vm', instance_type: 'unknown', metric: 'cpu', accounts: K, version: 1 });
    await p.ch!.insert({
      table: 'analytics.fleet_usage_hourly_versions',
      format: 'JSONEachRow',
      values: [planted(REGION_ATTACK_HOUR, 'acct-1'), planted(RARE_HOUR, 'onprem-dc9'), planted(TYPE_ATTACK_HOUR, 'ap-south-2')],
    });
    try {
      const hits = (await scanAnalytics(p.ch!)).hits;
      const on = (value: string) => hits.filter((h) => h.value === value).map((h) => h.reason);
      expect(on('acct-1')).toContain('holds the billing identifier "acct-1"');
      // Held by 2 accounts in its hour (as sent), under k, not allow-listed.
      const dc9 = new Set(sent.filter((r) => r.hour === RARE_HOUR && r.region === 'onprem-dc9').map((r) => r.account)).size;
      expect(on('onprem-dc9')).toEqual([expect.stringContaining(`label held by ${dc9} account(s)`)]);
      // On the allow-list: a public name, whatever its count.
      expect(on('ap-south-2')).toEqual([]);
      // An operator's list vouches for its values.
      const listed = await scanAnalytics(p.ch!, { labelValues: ['onprem-dc9'] });
      expect(listed.hits.filter((h) => h.value === 'onprem-dc9')).toEqual([]);
    } finally {
      await p.ch!.command({ query: 'DELETE FROM analytics.fleet_usage_hourly_versions WHERE version = 1' });
    }
  });
});
