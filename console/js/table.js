// @ts-check
/** A sortable table: click a column header to sort by it, again to reverse. */
import { fmtNumber, h, replace, words } from './dom.js';

/** Rows drawn at once; a larger answer says how many more there are. */
const MAX_ROWS = 1000;

/**
 * @typedef {{ key: string, label?: string, numeric?: boolean, nowrap?: boolean, format?: (v: unknown, row: Record<string, unknown>) => string | Node }} Column
 *   nowrap: a value that reads as one token (a time) is never broken across lines
 */

/** @param {unknown} v */
const isNumeric = (v) => typeof v === 'number' || (typeof v === 'string' && v.trim() !== '' && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(v.trim()));

/**
 * Columns for rows of unknown shape: every key seen, numbers right-aligned.
 * @param {Record<string, unknown>[]} rows
 * @returns {Column[]}
 */
export function columnsOf(rows) {
  /** @type {Map<string, boolean>} */
  const seen = new Map();
  for (const r of rows.slice(0, 200)) {
    for (const [k, v] of Object.entries(r)) {
      const numeric = v === null || v === undefined ? seen.get(k) ?? true : isNumeric(v);
      seen.set(k, (seen.get(k) ?? true) && numeric);
    }
  }
  return [...seen].map(([key, numeric]) => ({ key, numeric }));
}

/** @param {unknown} v */
function cellText(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/**
 * @param {Record<string, unknown>[]} rows
 * @param {Column[]} [columns]
 * @param {{ caption?: string, id?: string, exact?: boolean }} [opts]  exact: show numbers as sent (billing)
 */
export function sortableTable(rows, columns = columnsOf(rows), opts = {}) {
  /** @type {{ key: string, dir: 1 | -1 } | undefined} */
  let sort;
  const tbody = h('tbody');
  const heads = columns.map((c) => {
    const th = h('th', { scope: 'col', class: c.numeric ? 'num' : undefined, 'aria-sort': 'none' }, h('button', { type: 'button', class: 'sort', text: c.label ?? words(c.key), onclick: () => sortBy(c, th) }));
    return th;
  });

  /** @param {Column} c @param {HTMLElement} th */
  function sortBy(c, th) {
    sort = sort?.key === c.key ? { key: c.key, dir: sort.dir === 1 ? -1 : 1 } : { key: c.key, dir: 1 };
    for (const other of heads) other.setAttribute('aria-sort', 'none');
    th.setAttribute('aria-sort', sort.dir === 1 ? 'ascending' : 'descending');
    draw();
  }

  function draw() {
    const list = [...rows];
    if (sort) {
      const { key, dir } = sort;
      const col = columns.find((c) => c.key === key);
      list.sort((a, b) => {
        const x = a[key];
        const y = b[key];
        if (x === null || x === undefined) return 1; // blanks last either way
        if (y === null || y === undefined) return -1;
        const d = col?.numeric ? Number(x) - Number(y) : String(x).localeCompare(String(y), 'en', { numeric: true });
        return d * dir;
      });
    }
    replace(
      tbody,
      list.slice(0, MAX_ROWS).map((r) =>
        h(
          'tr',
          {},
          columns.map((c) => {
            const v = r[c.key];
            const shown = c.format ? c.format(v, r) : c.numeric && !opts.exact ? fmtNumber(v) : cellText(v);
            return h('td', { class: c.numeric ? 'num' : c.nowrap ? 'nowrap' : undefined, 'data-col': c.key, title: typeof v === 'string' || typeof v === 'number' ? String(v) : undefined }, shown);
          }),
        ),
      ),
    );
  }
  draw();
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', { class: 'data', id: opts.id }, opts.caption ? h('caption', { text: opts.caption }) : null, h('thead', {}, h('tr', {}, heads)), tbody),
    rows.length > MAX_ROWS ? h('p', { class: 'muted', text: `Showing the first ${MAX_ROWS} of ${rows.length} rows (sorting applies to all).` }) : null,
    rows.length === 0 ? h('p', { class: 'muted empty', text: 'No rows.' }) : null,
  );
}
