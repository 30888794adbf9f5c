// @ts-check
/** Small DOM helpers: elements are built with the DOM API, never from HTML strings. */

/** @typedef {Node | string | number | null | undefined | false | Child[]} Child */

/**
 * An element with attributes and children. `class`, `text` and `on<event>` are special.
 * @param {string} tag
 * @param {Record<string, unknown>} [attrs]
 * @param {...Child} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/**
 * @param {HTMLElement} el
 * @param {unknown[]} children
 */
function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** @param {HTMLElement} el @param {...unknown} children */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A message box: kind is info, warn or error. @param {'info' | 'warn' | 'error'} kind @param {string | Node} message */
export function notice(kind, message) {
  return h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
}

/** A figure with a label, for the headline numbers. @param {string} label @param {string | number} value @param {string} [sub] @param {string} [tone] */
export function stat(label, value, sub, tone) {
  return h('div', { class: `stat${tone ? ` ${tone}` : ''}`, 'data-stat': label }, h('div', { class: 'stat-label', text: label }), h('div', { class: 'stat-value', text: String(value) }), sub ? h('div', { class: 'stat-sub', text: sub }) : null);
}

/** Integers with thousands separators; other numbers to a few significant places. @param {unknown} v */
export function fmtNumber(v) {
  if (v === null || v === undefined || v === '') return '—';
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n)) return String(v);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return n.toLocaleString('en-US', { maximumFractionDigits: Math.abs(n) >= 100 ? 1 : Math.abs(n) >= 1 ? 3 : 6 });
}

/** An ISO time as "2026-01-05 14:00 UTC". @param {string | null | undefined} iso */
export function fmtTime(iso) {
  if (!iso) return '—';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A duration in words, from seconds. @param {number} s */
export function fmtAge(s) {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

/** A field name as words: "avg_resources" → "avg resources". @param {string} name */
export const words = (name) => name.replace(/_/g, ' ');

/**
 * A labelled form control row.
 * @param {string} label @param {HTMLElement} control @param {string} [hint]
 */
export function field(label, control, hint) {
  if (!control.id) control.id = `f-${Math.random().toString(36).slice(2, 9)}`;
  return h('div', { class: 'field' }, h('label', { for: control.id, text: label }), control, hint ? h('div', { class: 'hint', text: hint }) : null);
}

/** Saves a Blob as a file through a temporary object URL. @param {Blob} blob @param {string} name */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Bytes in words. @param {number} n */
export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}
