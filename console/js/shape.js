// @ts-check
/**
 * What shaped an analytics answer (k-anonymity, suppression, history), when the API says:
 * `shaped_by` and `warnings` in a JSON answer, or the X-Analytics-* and Warning headers of
 * a streamed one. Shown if present; nothing here requires them.
 */
import { fmtNumber, h, words } from './dom.js';
import { sortableTable } from './table.js';

/** @param {any} shaped  @param {unknown} warnings */
export function shapeNotice(shaped, warnings) {
  const list = Array.isArray(warnings) ? warnings.map((w) => (typeof w === 'string' ? w : w?.message ?? JSON.stringify(w))) : [];
  if (!shaped && list.length === 0) return null;
  const parts = [];
  if (shaped && typeof shaped === 'object') {
    const p = shaped.privacy;
    if (p && typeof p === 'object') {
      if (p.k !== undefined) parts.push(`k=${p.k}`);
      if (Number(p.resource_hours) === 0) parts.push('no suppression report for these hours');
      else if (p.suppressed !== undefined) parts.push(`${fmtNumber(p.suppressed)}${p.resource_hours !== undefined ? ` of ${fmtNumber(p.resource_hours)}` : ''} resource-hours suppressed`);
      if (p.generalized) parts.push(`${fmtNumber(p.generalized)} generalized`);
      if (p.scope) parts.push(String(p.scope));
    }
    const hist = shaped.history;
    if (hist && typeof hist === 'object') {
      const needs = hist.needs && typeof hist.needs === 'object' ? hist.needs.text ?? `${hist.needs.hours} h` : undefined;
      parts.push(`history: ${fmtNumber(hist.hours)} h with data${needs ? `, needs ${needs}` : ''}`);
    }
    // Fields this console does not know yet are still shown.
    for (const [k, v] of Object.entries(shaped)) {
      if (k === 'privacy' || k === 'history') continue;
      parts.push(`${words(k)}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    }
  }
  // The suppression report per metric, when the answer carries it.
  const byMetric = shaped?.privacy?.by_metric;
  return h('div', { class: `notice ${list.length ? 'warn' : 'info'} shape`, 'data-shape': '' },
    parts.length ? h('div', { class: 'shape-line', text: `Shaped by: ${parts.join(' · ')}` }) : null,
    list.length ? h('ul', {}, list.map((w) => h('li', { text: w }))) : null,
    Array.isArray(byMetric) && byMetric.length > 0
      ? h('details', { class: 'suppression' }, h('summary', { text: 'Suppression report by metric (resource-hours)' }), sortableTable(byMetric, undefined, { id: 'suppression-report' }))
      : null);
}

/** The same from response headers (datasets, CSV). @param {Headers} headers */
export function shapeFromHeaders(headers) {
  const k = headers.get('x-analytics-k');
  if (!k) return null;
  const n = (/** @type {string} */ name) => headers.get(name) ?? undefined;
  const warning = headers.get('warning');
  const warnings = warning ? [...warning.matchAll(/199 \S+ "((?:[^"\\]|\\.)*)"/g)].map((m) => (m[1] ?? '').replace(/\\(.)/g, '$1')) : [];
  return shapeNotice({ privacy: { k, suppressed: n('x-analytics-suppressed-resources'), resource_hours: n('x-analytics-resource-hours'), generalized: Number(n('x-analytics-generalized-resources') ?? 0) } }, warnings);
}
