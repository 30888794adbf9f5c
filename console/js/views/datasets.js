// @ts-check
/**
 * Training datasets (data-science key): GET /v1/analytics/datasets, each one's data card
 * for the chosen parameters, and the download (Parquet or CSV) through the API with the
 * session's key, saved as a file.
 */
import { api, explain, query } from '../api.js';
import { field, fmtBytes, fmtNumber, h, notice, replace, saveBlob, words } from '../dom.js';
import { paramForm } from '../params.js';
import { shapeFromHeaders, shapeNotice } from '../shape.js';
import { columnsOf, sortableTable } from '../table.js';

/**
 * @param {HTMLElement} root
 * @param {{ params: URLSearchParams, setParams: (p: URLSearchParams) => void }} nav
 */
export async function render(root, nav) {
  const head = h('div', { class: 'view-head' }, h('h1', { text: 'Datasets' }));
  replace(root, head, h('p', { class: 'muted', text: 'Loading the datasets…' }));
  let list;
  try {
    list = (await api('/v1/analytics/datasets')).datasets;
  } catch (err) {
    return replace(root, head, notice('error', explain(err)));
  }
  if (list.length === 0) return replace(root, head, notice('info', 'No datasets are defined.'));
  const picker = /** @type {HTMLSelectElement} */ (h('select', { id: 'dataset-name' }, list.map((/** @type {any} */ d) => h('option', { value: d.name, text: `${d.title} (${d.name})` }))));
  const chosen = nav.params.get('dataset');
  if (chosen && list.some((/** @type {any} */ d) => d.name === chosen)) picker.value = chosen;
  const about = h('div');
  const formBox = h('div');
  const status = h('p', { class: 'muted', id: 'dataset-status' });
  const shapeBox = h('div');
  const out = h('div');
  /** @type {ReturnType<typeof paramForm> | undefined} */
  let form;
  const current = () => list.find((/** @type {any} */ d) => d.name === picker.value);

  function showForm(/** @type {Record<string, string>} */ preset = {}) {
    const d = current();
    replace(about, h('p', { class: 'muted', text: `${d.description} Schema version ${d.schema_version}.` }));
    form = paramForm(d.params, preset);
    replace(formBox, form.el);
    replace(out, h('section', { class: 'card' }, h('h2', { text: 'Columns' }), sortableTable(d.columns, columnsOf(d.columns), { id: 'dataset-columns' })));
    status.textContent = '';
  }
  picker.addEventListener('change', () => showForm());
  showForm(Object.fromEntries([...nav.params].filter(([k]) => k !== 'dataset' && k !== 'card')));

  const values = () => /** @type {NonNullable<typeof form>} */ (form).values();

  async function card() {
    const d = current();
    nav.setParams(new URLSearchParams({ dataset: d.name, ...values() }));
    replace(out, h('p', { class: 'muted', text: 'Computing the data card…' }));
    try {
      replace(out, drawCard(await api(`/v1/analytics/datasets/${encodeURIComponent(d.name)}/card${query(values())}`)));
    } catch (err) {
      replace(out, notice('error', explain(err)));
    }
  }

  /** @param {'parquet' | 'csv'} format */
  async function download(format) {
    const d = current();
    status.textContent = `Preparing ${format}…`;
    replace(shapeBox);
    try {
      const res = await api(`/v1/analytics/datasets/${encodeURIComponent(d.name)}${query({ ...values(), format })}`, { raw: true, accept: '*/*' });
      const blob = await res.blob();
      const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? `${d.name}.${format}`;
      saveBlob(blob, name);
      status.textContent = `Saved ${name} (${fmtBytes(blob.size)}, schema version ${res.headers.get('x-dataset-schema-version') ?? '?'}).`;
      replace(shapeBox, shapeFromHeaders(res.headers));
    } catch (err) {
      status.textContent = explain(err);
    }
  }

  replace(
    root,
    head,
    h('form', { class: 'card', onsubmit: (/** @type {Event} */ e) => { e.preventDefault(); card(); } },
      field('Dataset', picker), about, formBox,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', id: 'dataset-card' }, 'Show data card'),
        h('button', { type: 'button', class: 'secondary', id: 'dataset-parquet', onclick: () => download('parquet') }, 'Download Parquet'),
        h('button', { type: 'button', class: 'secondary', id: 'dataset-csv', onclick: () => download('csv') }, 'Download CSV')),
      status, shapeBox),
    out,
  );
  if (nav.params.get('card') === '1') card();
}

/** A data card: its scalar facts, then each nested part as facts or a table. @param {any} c */
function drawCard(c) {
  const scalars = Object.entries(c).filter(([, v]) => v === null || typeof v !== 'object');
  const nested = Object.entries(c).filter(([, v]) => v !== null && typeof v === 'object');
  return h('section', { class: 'card', id: 'dataset-card-view' },
    h('h2', { text: `Data card: ${c.title ?? c.dataset}` }),
    shapeNotice(c.shaped_by, c.warnings),
    facts(scalars),
    nested.filter(([k]) => k !== 'shaped_by' && k !== 'warnings').map(([k, v]) => {
      if (Array.isArray(v)) {
        const rows = v.map((x) => (x !== null && typeof x === 'object' ? x : { value: x }));
        return h('div', {}, h('h3', { text: words(k) }), sortableTable(rows, columnsOf(rows), { id: `card-${k}` }));
      }
      return h('div', {}, h('h3', { text: words(k) }), facts(Object.entries(v)));
    }));
}

/** @param {[string, unknown][]} entries */
function facts(entries) {
  return h('dl', { class: 'facts' }, entries.map(([k, v]) => [
    h('dt', { text: words(k) }),
    h('dd', { 'data-fact': k, text: factText(v) }),
  ]));
}

/** A value in words; an object's fields as "name value · …" (one level; deeper as JSON). @param {unknown} v */
function factText(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return fmtNumber(v);
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ');
  if (typeof v === 'object') return Object.entries(v).map(([k, x]) => `${words(k)} ${typeof x === 'object' && x !== null ? JSON.stringify(x) : typeof x === 'number' ? fmtNumber(x) : String(x)}`).join(' · ');
  return String(v);
}
