// @ts-check
/**
 * An account's usage (billing key): quantities over time per metric, the status of every
 * billing period in the range, late-sample adjustments, data coverage, and the period's
 * usage export. Quantities are shown exactly as the API sends them (decimal strings).
 */
import { api, explain, query } from '../api.js';
import { timeChart, toEpochSeconds } from '../chart.js';
import { field, fmtBytes, fmtTime, h, notice, replace, saveBlob, stat, words } from '../dom.js';
import { columnsOf, sortableTable } from '../table.js';

/** Coverage is fetched per period; a range spans at most 400 days, so at most 14 of them. */
const MAX_COVERAGE_PERIODS = 14;

const day = (/** @type {number} */ ms) => new Date(ms).toISOString().slice(0, 10);

/** @param {HTMLElement} root */
export function render(root) {
  const now = Date.now();
  const monthStart = day(Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1));
  const account = /** @type {HTMLInputElement} */ (h('input', { type: 'text', id: 'billing-account', required: true, spellcheck: 'false', placeholder: 'account id', maxlength: 128 }));
  const from = /** @type {HTMLInputElement} */ (h('input', { type: 'date', id: 'billing-from', value: monthStart }));
  const through = /** @type {HTMLInputElement} */ (h('input', { type: 'date', id: 'billing-through', value: day(now) }));
  const granularity = /** @type {HTMLSelectElement} */ (h('select', { id: 'billing-granularity' }, ['hour', 'day', 'month', 'total'].map((g) => h('option', { value: g, text: g }))));
  granularity.value = 'day';
  const out = h('div', { class: 'billing-out' });
  const form = h(
    'form',
    { class: 'card controls', onsubmit: (/** @type {Event} */ e) => { e.preventDefault(); load(); } },
    field('Account', account),
    field('From (UTC)', from),
    field('Through (UTC, inclusive)', through),
    field('Granularity', granularity),
    h('button', { type: 'submit', id: 'billing-load' }, 'Show usage'),
  );
  replace(root, h('div', { class: 'view-head' }, h('h1', { text: 'Account usage' })), form, out);

  async function load() {
    const id = account.value.trim();
    if (!id) return replace(out, notice('warn', 'Enter an account id.'));
    if (!from.value || !through.value) return replace(out, notice('warn', 'Choose both dates.'));
    const toMs = Date.parse(`${through.value}T00:00:00Z`) + 86_400_000;
    const params = { from: `${from.value}T00:00:00Z`, to: new Date(toMs).toISOString().replace('.000', ''), granularity: granularity.value };
    const path = `/v1/accounts/${encodeURIComponent(id)}/usage`;
    replace(out, h('p', { class: 'muted', text: 'Loading…' }));
    try {
      const [usage, totals] = await Promise.all([api(path + query(params)), api(path + query({ ...params, granularity: 'total' }))]);
      replace(out, ...drawUsage(usage, totals));
      out.append(await coverage(id, usage.periods.slice(0, MAX_COVERAGE_PERIODS)));
    } catch (err) {
      replace(out, notice('error', explain(err)));
    }
  }
}

/** @param {any} usage @param {any} totals */
function drawUsage(usage, totals) {
  const rows = /** @type {Record<string, any>[]} */ (usage.rows);
  const metrics = [...new Set(rows.map((r) => r.metric))];
  const charts = usage.granularity === 'total' ? [] : metrics.map((m) => {
    const mine = rows.filter((r) => r.metric === m);
    return timeChart({
      title: `${m} (${mine[0]?.unit ?? ''}) per ${usage.granularity}`,
      series: [{ label: m, points: mine.map((r) => [/** @type {number} */ (toEpochSeconds(r.period_start)), Number(r.quantity)]) }],
      height: 200,
    });
  });
  return [
    h('section', { class: 'card' },
      h('div', { class: 'view-head' },
        h('h2', { text: `${usage.account}: ${fmtTime(usage.from)} → ${fmtTime(usage.to)}` }),
        usage.complete
          ? h('span', { class: 'badge ok', id: 'billing-complete', text: 'complete' })
          : h('span', { class: 'badge warn', id: 'billing-complete', text: 'incomplete' })),
      usage.complete ? null : h('ul', { class: 'reasons' }, (usage.incomplete_reasons ?? []).map((/** @type {any} */ r) => h('li', { text: `${r.code}: ${r.message}` }))),
      h('div', { class: 'stats', id: 'billing-totals' },
        totals.rows.length === 0
          ? h('p', { class: 'muted', text: 'No usage in this range.' })
          : totals.rows.map((/** @type {any} */ r) => stat(r.metric, r.quantity, `${r.unit} · ${r.base_total} ${r.base_unit}`))),
    ),
    charts.length ? h('section', { class: 'card grid-2' }, charts) : null,
    h('section', { class: 'card' }, h('h2', { text: 'Billing periods' }), periodsTable(usage.periods)),
    h('section', { class: 'card' }, h('h2', { text: `Usage per ${usage.granularity}` }), sortableTable(rows, [
      { key: 'period_start', label: 'period start', format: (v) => fmtTime(/** @type {string} */ (v)) },
      { key: 'metric' },
      ...(usage.group_by.includes('region') ? [{ key: 'region' }] : []),
      ...(usage.group_by.includes('resource_id') ? [{ key: 'resource_id', label: 'resource' }] : []),
      { key: 'quantity', numeric: true },
      { key: 'unit' },
      { key: 'base_total', label: 'base total', numeric: true },
      { key: 'base_unit', label: 'base unit' },
    ], { id: 'billing-usage', exact: true })),
    h('section', { class: 'card' }, h('h2', { text: 'Adjustments' }),
      usage.adjustments.length === 0
        ? h('p', { class: 'muted', id: 'billing-adjustments', text: 'No late samples billed in a later period in this range.' })
        : sortableTable(usage.adjustments, columnsOf(usage.adjustments), { id: 'billing-adjustments', exact: true })),
  ];
}

/** @param {any[]} periods */
function periodsTable(periods) {
  const status = h('p', { class: 'muted', id: 'export-status' });
  const table = sortableTable(periods, [
    { key: 'period' },
    { key: 'status', format: (v) => h('span', { class: `badge ${v === 'closed' ? 'ok' : v === 'closing' ? 'warn' : ''}`, 'data-period-status': String(v), text: String(v) }) },
    { key: 'closed_at', label: 'closed at', format: (v) => (v ? fmtTime(/** @type {string} */ (v)) : '') },
    { key: 'export_sha256', label: 'export SHA-256', format: (v) => (v ? h('code', { class: 'hash', text: String(v) }) : '') },
    { key: 'period', label: 'usage export', format: (v) => h('button', { type: 'button', class: 'small', 'data-export': String(v), onclick: () => download(String(v), status) }, 'CSV') },
  ], { id: 'billing-periods' });
  return h('div', {}, table, status);
}

/**
 * The whole period's usage export (every account; GET /v1/usage), first page, as a file.
 * @param {string} period @param {HTMLElement} status
 */
async function download(period, status) {
  status.textContent = `Downloading the ${period} export…`;
  try {
    const res = await api(`/v1/usage${query({ period, format: 'csv' })}`, { raw: true, accept: 'text/csv' });
    const blob = await res.blob();
    saveBlob(blob, `usage-${period}.csv`);
    const hdr = (/** @type {string} */ n) => res.headers.get(n);
    const more = hdr('x-next-cursor') ? ` More accounts follow: GET /v1/usage?period=${period}&cursor=${hdr('x-next-cursor')}.` : '';
    status.textContent = `usage-${period}.csv: ${fmtBytes(blob.size)}, ${hdr('x-page-accounts')} of ${hdr('x-total-accounts')} accounts, period ${hdr('x-period-status')}, ${hdr('x-complete') === 'true' ? 'complete' : 'not complete yet'}${hdr('x-export-sha256') ? `, closed export SHA-256 ${hdr('x-export-sha256')}` : ''}.${more}`;
  } catch (err) {
    status.textContent = explain(err);
  }
}

/** Coverage of each period: the API's rows as they come, new fields included. @param {string} account @param {any[]} periods */
async function coverage(account, periods) {
  const section = h('section', { class: 'card', id: 'billing-coverage' }, h('h2', { text: 'Coverage' }));
  for (const p of periods) {
    try {
      const c = await api(`/v1/accounts/${encodeURIComponent(account)}/coverage${query({ period: p.period })}`);
      const extra = Object.entries(c).filter(([k]) => !['account', 'period', 'metrics'].includes(k));
      const rows = /** @type {Record<string, unknown>[]} */ (c.metrics);
      const pct = (/** @type {unknown} */ v) => (v === undefined || v === null ? '—' : `${(Number(v) * 100).toFixed(2)} %`);
      section.append(h('h3', { text: p.period }));
      if (extra.length) section.append(h('dl', { class: 'facts' }, extra.map(([k, v]) => [h('dt', { text: words(k) }), h('dd', { text: typeof v === 'object' ? JSON.stringify(v) : String(v) })])));
      section.append(rows.length
        ? sortableTable(rows, columnsOf(rows).map((col) => (/^coverage/.test(col.key) ? { ...col, numeric: true, format: pct } : col)), { id: `coverage-${p.period}`, exact: true })
        : h('p', { class: 'muted', text: 'No usage data in this period.' }));
    } catch (err) {
      section.append(h('h3', { text: p.period }), notice('error', explain(err)));
    }
  }
  return section;
}
