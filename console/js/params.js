// @ts-check
/**
 * A form for a named query's or dataset's parameters, built from the listing's typed
 * parameters (name, type, required, default, min/max, description). Values go to the API
 * as typed; the API validates them and its message is shown as is.
 */
import { field, h } from './dom.js';

/** @typedef {{ name: string, type: string, required?: boolean, default?: string, min?: number, max?: number, description?: string }} Param */

/**
 * @param {Param[]} params
 * @param {Record<string, string>} [preset]  values to start from (else the defaults)
 * @returns {{ el: HTMLElement, values: () => Record<string, string>, set: (name: string, value: string) => void }}
 */
export function paramForm(params, preset = {}) {
  /** @type {Map<string, HTMLInputElement | HTMLSelectElement>} */
  const controls = new Map();
  const rows = params.map((p) => {
    const enumMatch = /^Enum\((.*)\)$/.exec(p.type);
    /** @type {HTMLInputElement | HTMLSelectElement} */
    let control;
    if (enumMatch) {
      const options = (enumMatch[1] ?? '').split(',').map((s) => s.trim());
      control = /** @type {HTMLSelectElement} */ (h('select', { 'data-param': p.name }, p.required || p.default !== undefined ? null : h('option', { value: '', text: '(any)' }), options.map((o) => h('option', { value: o, text: o }))));
      control.value = preset[p.name] ?? p.default ?? '';
    } else {
      const numeric = p.type === 'UInt32' || p.type === 'Float64';
      control = /** @type {HTMLInputElement} */ (h('input', {
        type: numeric ? 'number' : 'text',
        'data-param': p.name,
        min: p.min,
        max: p.max,
        step: p.type === 'Float64' ? 'any' : numeric ? 1 : undefined,
        placeholder: p.default ?? (p.required ? 'required' : 'optional'),
        spellcheck: 'false',
        required: p.required === true,
      }));
      control.value = preset[p.name] ?? '';
    }
    controls.set(p.name, control);
    const kind = p.type === 'DateTime' ? 'time: RFC 3339, YYYY-MM-DD or now-30d' : p.type;
    return field(p.name, control, [p.description, kind, p.min !== undefined ? `${p.min}–${p.max}` : ''].filter(Boolean).join(' · '));
  });
  return {
    el: h('div', { class: 'params' }, rows),
    values: () => Object.fromEntries([...controls].map(([k, c]) => [k, c.value.trim()]).filter(([, v]) => v !== '')),
    set: (name, value) => {
      const c = controls.get(name);
      if (c) c.value = value;
    },
  };
}
