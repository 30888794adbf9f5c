// @ts-check
/**
 * Fleet capacity (planner key): the named queries of GET /v1/analytics/queries, each with a
 * form from its typed parameters, its answer charted over time and in a sortable table,
 * and what shaped it (k, suppression, history) when the API reports it.
 */
import { api, explain, query } from '../api.js';
import { MAX_SERIES, timeChart, toEpochSeconds } from '../chart.js';
import { field, h, notice, replace, saveBlob } from '../dom.js';
import { paramForm } from '../params.js';
import { shapeNotice } from '../shape.js';
import { sortableTable } from '../table.js';

const TIME_TYPE = /^(Nullable\()?(DateTime|Date)/;
const NUMBER_TYPE = /^(Nullable\()?(U?Int|Float|Decimal)/;
/** Counting columns charted only when nothing else is numeric. */
const COUNTS = new Set(['hours', 'weeks_averaged', 'backtest_hours', 'cells']);
/** Columns whose name states their own unit or kind: a row's `unit` is not theirs. */
const OWN_UNIT = /(_pct|_gib|_gb|_mbps|_days?|_per_day|_hours|resources|utilization|index|^k|^k_max)$/;

/**
 * @param {HTMLElement} root
 * @param {{ params: URLSearchParams, setParams: (p: URLSearchParams) => void }} nav
 */
export async function render(root, nav) {
  replace(root, h('div', { class: 'view-head' }, h('h1', { text: 'Fleet capacity' })), h('p', { class: 'muted', text: 'Loading the named queries…' }));
  let list;
  try {
    list = (await api('/v1/analytics/queries')).queries;
  } catch (err) {
    return replace(root, h('div', { class: 'view-head' }, h('h1', { text: 'Fleet capacity' })), notice('error', explain(err)));
  }
  const picker = /** @type {HTMLSelectElement} */ (h('select', { id: 'planner-query' }, list.map((/** @type {any} */ q) => h('option', { value: q.name, text: q.title }))));
  const about = h('p', { class: 'muted description' });
  const formBox = h('div');
  const out = h('div', { class: 'planner-out' });
  /** @type {ReturnType<typeof paramForm> | undefined} */
  let form;

  const chosen = nav.params.get('query');
  picker.value = list.some((/** @type {any} */ q) => q.name === chosen) ? /** @type {string} */ (chosen) : list.find((/** @type {any} */ q) => /fleet-size/.test(q.name))?.name ?? list[0]?.name;
  const current = () => list.find((/** @type {any} */ q) => q.name === picker.value);

  function showForm(/** @type {Record<string, string>} */ preset = {}) {
    const q = current();
    about.textContent = `${q.description}${q.needs ? ` Needs ${q.needs} of history.` : ''}`;
    form = paramForm(q.params, preset);
    replace(formBox, form.el);
    replace(out);
  }
  picker.addEventListener('change', () => showForm());

  const preset = Object.fromEntries([...nav.params].filter(([k]) => k !== 'query' && k !== 'run'));
  showForm(preset);

  async function run() {
    const q = current();
    const values = /** @type {NonNullable<typeof form>} */ (form).values();
    nav.setParams(new URLSearchParams({ query: q.name, ...values }));
    replace(out, h('p', { class: 'muted', text: 'Running…' }));
    try {
      const result = await api(`/v1/analytics/queries/${q.name}${query(values)}`);
      replace(out, ...drawResult(result));
    } catch (err) {
      replace(out, notice('error', explain(err)));
    }
  }

  async function csv() {
    const q = current();
    try {
      const res = await api(`/v1/analytics/queries/${q.name}${query({ ...(form?.values() ?? {}), format: 'csv' })}`, { raw: true, accept: 'text/csv' });
      saveBlob(await res.blob(), `${q.name.replace('/', '_')}.csv`);
    } catch (err) {
      replace(out, notice('error', explain(err)));
    }
  }

  replace(
    root,
    h('div', { class: 'view-head' }, h('h1', { text: 'Fleet capacity' })),
    h('form', { class: 'card', onsubmit: (/** @type {Event} */ e) => { e.preventDefault(); run(); } },
      field('Named query', picker), about, formBox,
      h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'planner-run' }, 'Run'), h('button', { type: 'button', class: 'secondary', onclick: csv }, 'Download CSV'))),
    out,
  );
  if (nav.params.get('run') === '1') run();
}

/** @param {any} r */
function drawResult(r) {
  /** @type {{ name: string, type: string }[]} */
  const columns = r.columns ?? [];
  const rows = /** @type {Record<string, unknown>[]} */ (r.rows);
  const time = columns.find((c) => TIME_TYPE.test(c.type));
  const numeric = columns.filter((c) => NUMBER_TYPE.test(c.type) && c !== time);
  const keys = columns.filter((c) => c !== time && !NUMBER_TYPE.test(c.type) && !/unit$/.test(c.name));
  const measures = numeric.filter((c) => !COUNTS.has(c.name));
  const chartBox = h('div');
  /** @type {HTMLSelectElement | undefined} */
  let measure;
  if (time && rows.length && (measures.length || numeric.length)) {
    const options = measures.length ? measures : numeric;
    measure = /** @type {HTMLSelectElement} */ (h('select', { id: 'planner-measure' }, options.map((c) => h('option', { value: c.name, text: c.name }))));
    const draw = () => {
      const y = /** @type {HTMLSelectElement} */ (measure).value;
      // Rows in several units (usage of every metric: vCPU, GiB, Mbit/s) get a chart per
      // unit: lines that differ by orders of magnitude never share an axis.
      /** @type {Map<string, Map<string, [number, number | null][]>>} */
      const byUnit = new Map();
      for (const row of rows) {
        const unit = row.unit === null || row.unit === undefined ? '' : String(row.unit);
        const label = keys.map((k) => String(row[k.name])).join(' · ') || y;
        const x = toEpochSeconds(row[time.name]);
        if (x === undefined) continue;
        const v = row[y];
        const bySeries = byUnit.get(unit) ?? new Map();
        const list = bySeries.get(label) ?? [];
        list.push([x, v === null || v === undefined ? null : Number(v)]);
        bySeries.set(label, list);
        byUnit.set(unit, bySeries);
      }
      const by = keys.map((k) => k.name).join(', ') || 'time';
      const charts = [...byUnit].map(([unit, bySeries]) => timeChart({
        title: !unit ? `${y} by ${by}`
          : !OWN_UNIT.test(y) ? `${y} (${unit}) by ${by}`
          : `${y} by ${by}${byUnit.size > 1 ? ` (the series measured in ${unit})` : ''}`,
        series: [...bySeries].map(([label, points]) => ({ label, points })),
      }));
      chartBox.className = charts.length > 1 ? 'grid-2' : '';
      replace(chartBox, ...charts);
    };
    measure.addEventListener('change', draw);
    draw();
  }
  return [
    shapeNotice(r.shaped_by, r.warnings),
    h('section', { class: 'card' },
      h('div', { class: 'view-head' }, h('h2', { text: r.title }), h('span', { class: 'muted', id: 'planner-count', text: `${r.rows_count} rows` })),
      r.params ? h('p', { class: 'muted', text: Object.entries(r.params).map(([k, v]) => `${k}=${v ?? '—'}`).join(' · ') }) : null,
      measure ? field('Chart', measure, chartHint(keys, rows)) : null,
      chartBox),
    h('section', { class: 'card' }, sortableTable(rows, columns.map((c) => ({ key: c.name, numeric: NUMBER_TYPE.test(c.type), nowrap: TIME_TYPE.test(c.type) })), { id: 'planner-table' })),
  ];
}

/**
 * What the charts draw, in words.
 * @param {{ name: string }[]} keys @param {Record<string, unknown>[]} rows
 */
function chartHint(keys, rows) {
  const perUnit = new Set(rows.map((r) => r.unit ?? '')).size > 1 ? '; one chart per unit' : '';
  return keys.length > 0 ? `one line per ${keys.map((k) => k.name).join(' × ')} (at most ${MAX_SERIES} a chart)${perUnit}` : undefined;
}
