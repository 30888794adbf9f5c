// @ts-check
/** Time-series charts with uPlot (served from this server: ../vendor/uPlot.esm.js). */
// @ts-ignore -- no types at this URL: app/console-routes.ts serves it from node_modules/uplot
import uPlot from '../vendor/uPlot.esm.js';
import { fmtNumber, h } from './dom.js';

const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#ea580c', '#4f46e5', '#0d9488', '#9333ea'];
/** Series drawn in one chart; more would be unreadable anyway. */
export const MAX_SERIES = 12;

/**
 * @typedef {{ label: string, points: [number, number | null][] }} Series  points: [epoch seconds, value]
 */

/**
 * A line chart of series over time (UTC). Returns its element; it sizes itself to its container.
 * @param {{ title?: string, series: Series[], yLabel?: string, height?: number, bars?: boolean }} spec
 */
export function timeChart(spec) {
  const shown = spec.series.slice(0, MAX_SERIES);
  const xs = [...new Set(shown.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const data = [xs, ...shown.map((s) => {
    /** @type {(number | null)[]} */
    const ys = new Array(xs.length).fill(null);
    for (const [x, y] of s.points) ys[/** @type {number} */ (index.get(x))] = y;
    return ys;
  })];
  const box = h('div', { class: 'chart', 'data-series': shown.length });
  const wrap = h('figure', { class: 'chart-figure' }, spec.title ? h('figcaption', { text: spec.title }) : null, box,
    spec.series.length > MAX_SERIES ? h('p', { class: 'muted', text: `Charting the first ${MAX_SERIES} of ${spec.series.length} series; the table has them all.` }) : null);
  const single = xs.length === 1;
  /** @type {any} */
  const opts = {
    width: 600,
    height: spec.height ?? 260,
    tzDate: (/** @type {number} */ ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
    // A single time would make uPlot span years around it: show an hour either side.
    scales: { x: { time: true, range: (/** @type {unknown} */ _u, /** @type {number} */ min, /** @type {number} */ max) => (min === max ? [min - 3600, max + 3600] : [min, max]) } },
    axes: [
      { stroke: '#475569', grid: { stroke: '#e2e8f0' }, values: utcTicks, space: 60, incrs: TIME_STEPS },
      { stroke: '#475569', grid: { stroke: '#e2e8f0' }, size: 70, label: spec.yLabel, values: (/** @type {unknown} */ _u, /** @type {number[]} */ ticks) => ticks.map((t) => fmtNumber(t)) },
    ],
    series: [
      { label: 'time (UTC)', value: (/** @type {unknown} */ _u, /** @type {number | null} */ t) => (t === null ? '—' : utcText(t)) },
      ...shown.map((s, i) => ({
        label: s.label,
        stroke: PALETTE[i % PALETTE.length],
        width: 2,
        spanGaps: false,
        value: (/** @type {unknown} */ _u, /** @type {number | null} */ v) => (v === null ? '—' : fmtNumber(v)),
        // One point would draw no line: show it as a dot.
        points: { show: single || xs.length < 40 },
      })),
    ],
  };
  // Drawn at once (into the detached box) and resized to the container's width once it is
  // in the page and whenever that width changes; the observer ends when the chart leaves.
  const plot = new uPlot(opts, /** @type {any} */ (data), box);
  let placed = false;
  const observer = new ResizeObserver(() => {
    if (!box.isConnected) {
      if (placed) observer.disconnect();
      return;
    }
    placed = true;
    const w = Math.max(280, Math.floor(box.clientWidth));
    if (w !== plot.width) plot.setSize({ width: w, height: opts.height });
  });
  observer.observe(box);
  return wrap;
}

const D = 86400;
/** Tick steps on the time axis: whole seconds at least, so no two labels read the same. */
const TIME_STEPS = [1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, D, 2 * D, 7 * D, 14 * D, 28 * D, 91 * D, 365 * D];

/** "2026-01-05 14:00" (UTC). @param {number} t epoch seconds */
const utcText = (t) => new Date(t * 1000).toISOString().slice(0, 16).replace('T', ' ');

/**
 * Tick labels in UTC, 24-hour: times within a day, dates across days, months across a year.
 * @param {unknown} _u @param {number[]} ticks
 */
function utcTicks(_u, ticks) {
  const step = ticks.length > 1 ? /** @type {number} */ (ticks[1]) - /** @type {number} */ (ticks[0]) : 3600;
  return ticks.map((t, i) => {
    const s = new Date(t * 1000).toISOString();
    if (step >= 28 * 86400) return s.slice(0, 7);
    if (step >= 86400) return s.slice(5, 10);
    const time = s.slice(11, step < 60 ? 19 : 16);
    return i === 0 || time.startsWith('00:00') ? `${time}\n${s.slice(5, 10)}` : time;
  });
}

/**
 * A ClickHouse or API time value as epoch seconds: "2026-01-05 00:00:00", "2026-01-05",
 * "2026-01-05T00:00:00.000Z". Times without a zone are UTC, as the API writes them.
 * @param {unknown} v
 * @returns {number | undefined}
 */
export function toEpochSeconds(v) {
  if (typeof v !== 'string') return undefined;
  const s = /^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : /[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v.replace(' ', 'T')}Z`;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : ms / 1000;
}
