// trend.js: one numeric test's values over time as an inline SVG line chart
// (our own code, nothing downloaded), the reference range shaded, critical
// and abnormal points marked by shape as well as colour, and the same data
// as a table for screen readers and keyboard users.
import { h, svg, flagClass, flagText, formatShortDate, formatTime, numericValue, parseRange } from './format.js';

const W = 640;
const H = 240;
const PAD = { left: 52, right: 16, top: 28, bottom: 36 };

// A round step (1, 2 or 5 times a power of ten) giving about `count` ticks.
function niceStep(span, count) {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

// Tests with at least two numeric results, most results first.
export function trendableTests(results) {
  const byCode = new Map();
  for (const r of results) {
    if (numericValue(r.value) === null) continue;
    if (!byCode.has(r.test_code)) byCode.set(r.test_code, { code: r.test_code, name: r.test_name || r.test_code, rows: [] });
    byCode.get(r.test_code).rows.push(r);
  }
  return [...byCode.values()].filter((t) => t.rows.length >= 2)
    .sort((a, b) => b.rows.length - a.rows.length || a.name.localeCompare(b.name));
}

function when(r) {
  return new Date(r.observation_date || r.received_at).getTime();
}

export function renderTrend(container, test) {
  const rows = [...test.rows].sort((a, b) => when(a) - when(b) || a.id - b.id);
  const values = rows.map((r) => numericValue(r.value));
  const times = rows.map(when);
  const range = parseRange(rows[rows.length - 1].reference_range);
  const units = rows[rows.length - 1].units || '';

  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (range?.low !== null && range?.low !== undefined) lo = Math.min(lo, range.low);
  if (range?.high !== null && range?.high !== undefined) hi = Math.max(hi, range.high);
  const margin = (hi - lo) * 0.1 || Math.abs(hi) * 0.1 || 1;
  const step = niceStep(hi - lo + 2 * margin, 4);
  lo = Math.floor((lo - margin) / step) * step;
  hi = Math.ceil((hi + margin) / step) * step;
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  if (t0 === t1) { t0 -= 3600e3; t1 += 3600e3; }

  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => PAD.top + (1 - (v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  const titleId = `trend-title-${test.code}`;
  const descId = `trend-desc-${test.code}`;

  const chart = svg('svg', {
    class: 'trend-chart', viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-labelledby': `${titleId} ${descId}`, dataset: { testCode: test.code },
  });
  chart.append(svg('title', { id: titleId }, `${test.name} over time`));
  chart.append(svg('desc', { id: descId },
    `${rows.length} results from ${formatTime(rows[0].observation_date || rows[0].received_at)} ` +
    `to ${formatTime(rows[rows.length - 1].observation_date || rows[rows.length - 1].received_at)}` +
    (range ? `; reference range ${rows[rows.length - 1].reference_range} ${units}` : '')));

  if (range) {
    const top = y(range.high ?? hi);
    const bottom = y(range.low ?? lo);
    chart.append(svg('rect', {
      class: 'reference-range', x: PAD.left, y: top, width: W - PAD.left - PAD.right,
      height: Math.max(0, bottom - top),
    }, svg('title', {}, `Reference range ${rows[rows.length - 1].reference_range} ${units}`)));
  }
  // Axes with a few value ticks and the first/last dates.
  chart.append(svg('line', { class: 'axis', x1: PAD.left, y1: H - PAD.bottom, x2: W - PAD.right, y2: H - PAD.bottom }));
  chart.append(svg('line', { class: 'axis', x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: H - PAD.bottom }));
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  for (let v = lo; v <= hi + step / 2; v += step) {
    chart.append(svg('line', { class: 'grid', x1: PAD.left, y1: y(v), x2: W - PAD.right, y2: y(v) }));
    chart.append(svg('text', { class: 'tick', x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' },
      v.toFixed(decimals)));
  }
  chart.append(svg('text', { class: 'tick', x: PAD.left, y: H - 12, 'text-anchor': 'start' }, formatShortDate(new Date(t0))));
  chart.append(svg('text', { class: 'tick', x: W - PAD.right, y: H - 12, 'text-anchor': 'end' }, formatShortDate(new Date(t1))));
  if (units) chart.append(svg('text', { class: 'tick units', x: 4, y: 14 }, units));

  chart.append(svg('polyline', {
    class: 'trend-line',
    points: rows.map((r, i) => `${x(times[i]).toFixed(1)},${y(values[i]).toFixed(1)}`).join(' '),
  }));
  rows.forEach((r, i) => {
    const cls = flagClass(r.abnormal_flag);
    const label = `${formatTime(r.observation_date || r.received_at)}: ${r.value} ${units} (${flagText(r.abnormal_flag)})`;
    const cx = x(times[i]);
    const cy = y(values[i]);
    // Critical points are diamonds, abnormal squares, normal circles.
    let mark;
    if (cls === 'flag-critical') {
      mark = svg('path', { d: `M${cx} ${cy - 7}L${cx + 7} ${cy}L${cx} ${cy + 7}L${cx - 7} ${cy}Z` });
    } else if (cls === 'flag-abnormal') {
      mark = svg('rect', { x: cx - 5, y: cy - 5, width: 10, height: 10 });
    } else {
      mark = svg('circle', { cx, cy, r: 5 });
    }
    mark.setAttribute('class', `point ${cls}`.trim());
    mark.dataset.resultId = String(r.id);
    mark.append(svg('title', {}, label));
    chart.append(mark);
  });

  const table = h('details', { class: 'trend-data' },
    h('summary', {}, `${test.name}: the values as a table`),
    h('div', { class: 'table-wrap' },
      h('table', { class: 'results compact' },
        h('caption', { class: 'visually-hidden' }, `${test.name} results, newest first`),
        h('thead', {}, h('tr', {}, ['Date', 'Result', 'Flag'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, [...rows].reverse().map((r) => h('tr', { class: flagClass(r.abnormal_flag) },
          h('td', {}, formatTime(r.observation_date || r.received_at)),
          h('td', {}, `${r.value} ${units}`),
          h('td', {}, flagText(r.abnormal_flag))))))));
  container.replaceChildren(h('figure', { class: 'trend' }, chart,
    h('figcaption', {}, `${test.name}: ${rows.length} results; shaded band = reference range` +
      (range ? ` ${rows[rows.length - 1].reference_range} ${units}` : ' (none given)') +
      '. ◆ critical, ■ abnormal, ● normal.')), table);
}
