// @ts-check
/** Pipeline health (any key): GET /v1/status, refreshed every few seconds while shown. */
import { api, explain } from '../api.js';
import { timeChart } from '../chart.js';
import { fmtAge, fmtNumber, fmtTime, h, notice, replace, stat } from '../dom.js';
import { sortableTable } from '../table.js';

const REFRESH_MS = 5000;
/** Points of the ingest-rate history kept in the page (10 minutes at 5 s). */
const HISTORY = 120;

/** @param {HTMLElement} root */
export function render(root) {
  /** @type {[number, number][]} */
  const history = [];
  const body = h('div', { class: 'health-body' }, h('p', { class: 'muted', text: 'Loading…' }));
  const stamp = h('span', { class: 'muted' });
  replace(root, h('div', { class: 'view-head' }, h('h1', { text: 'Pipeline health' }), stamp, h('button', { type: 'button', onclick: () => load() }, 'Refresh')), body);

  let stopped = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  async function load() {
    clearTimeout(timer);
    try {
      const s = await api('/v1/status');
      if (stopped) return;
      history.push([Date.parse(s.generated_at) / 1000, s.ingest.samples_per_s]);
      if (history.length > HISTORY) history.shift();
      replace(body, ...draw(s, history));
      stamp.textContent = `as of ${fmtTime(s.generated_at)}`;
    } catch (err) {
      if (stopped) return;
      replace(body, notice('error', explain(err)));
    }
    if (!stopped) timer = setTimeout(load, REFRESH_MS);
  }
  load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** @param {any} s @param {[number, number][]} history */
function draw(s, history) {
  const q = s.queue;
  const f = s.freshness;
  const now = Date.parse(s.generated_at);
  /** @param {string | null | undefined} iso */
  const age = (iso) => {
    if (!iso) return 'no data yet';
    const behind = (now - Date.parse(iso)) / 1000 - 3600; // from the end of that hour
    return behind <= 0 ? 'includes the current hour' : `its end is ${fmtAge(behind)} ago`;
  };
  const lagTone = f.fold_lag_batches > 0 || f.inflight_batches > 0 ? 'warn' : 'ok';
  const c = s.collector;
  return [
    h('section', { class: 'stats', 'aria-label': 'Ingest' },
      stat('Ingest rate', `${fmtNumber(s.ingest.samples_per_s)} samples/s`, `over the last ${s.ingest.window_s} s (this process)`),
      stat('Samples accepted', fmtNumber(s.ingest.samples_accepted), `since ${fmtTime(s.ingest.since)}`),
      stat('Samples rejected', fmtNumber(s.ingest.samples_rejected), 'refused by validation', s.ingest.samples_rejected > 0 ? 'warn' : undefined),
      stat('Batches accepted', fmtNumber(s.ingest.batches_accepted_fleet), `${fmtNumber(s.ingest.batches_per_s)} per s, fleet-wide`),
    ),
    h('section', { class: 'stats', 'aria-label': 'Backlog' },
      stat('Queue depth', fmtNumber(q.waiting), `${fmtNumber(q.active)} active, ${fmtNumber(q.delayed)} delayed`, q.waiting > 1000 ? 'warn' : undefined),
      stat('Dead letters', fmtNumber(s.dead_letters), s.dead_letters > 0 ? 'replay with usage-meter dead-letters' : 'none', s.dead_letters > 0 ? 'bad' : 'ok'),
      stat('Quarantine', `${fmtNumber(s.quarantine.rows)} rows`, `${fmtNumber(s.quarantine.entries)} ${s.quarantine.entries === 1 ? 'entry' : 'entries'}`, s.quarantine.rows > 0 ? 'bad' : 'ok'),
      stat('Not yet in totals', `${fmtNumber(f.fold_lag_batches)} batches`, `${fmtNumber(f.inflight_batches)} in flight, ${fmtNumber(f.dirty_hours)} hours to recompute`, lagTone),
    ),
    h('section', { class: 'stats', 'aria-label': 'Freshness' },
      stat('Billing data through', fmtTime(f.billing_hour), f.billing_hour !== undefined ? age(f.billing_hour) : 'not read by this role'),
      stat('Analytics data through', fmtTime(f.analytics_hour), f.analytics_hour !== undefined ? age(f.analytics_hour) : 'not read by this role'),
      stat('Pull targets', c.configured ? `${c.up} up / ${c.down} down` : 'none configured', c.configured ? `${c.unknown} not scraped yet` : 'COLLECTOR_TARGETS', c.down > 0 ? 'bad' : undefined),
      stat('Key', s.key.id, `role ${s.key.role}`),
    ),
    f.error ? notice('warn', `ClickHouse could not be read for freshness: ${f.error}`) : null,
    h('section', { class: 'card' }, timeChart({ title: 'Ingest rate while this page is open (samples/s)', series: [{ label: 'samples/s', points: history }], height: 180 })),
    c.configured
      ? h('section', { class: 'card' }, h('h2', { text: 'Collector targets' }), sortableTable(c.targets, [
          { key: 'id' },
          { key: 'mapping' },
          { key: 'health', format: (v) => h('span', { class: `badge ${v === 'up' ? 'ok' : v === 'down' ? 'bad' : ''}`, text: String(v) }) },
          { key: 'last_success', format: (v) => fmtTime(/** @type {string} */ (v)) },
          { key: 'scrapes', numeric: true },
          { key: 'failures', numeric: true },
          { key: 'samples_produced', numeric: true },
          { key: 'error', format: (v) => (v ? `${/** @type {any} */ (v).code}: ${/** @type {any} */ (v).message}` : '') },
        ]), c.targets_not_listed ? h('p', { class: 'muted', text: `${c.targets_not_listed} more targets not listed.` }) : null)
      : null,
  ];
}
