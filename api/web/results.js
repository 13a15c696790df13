// results.js: a patient's results, grouped by report (one OBR: the panel
// ordered, as one lab message carried it), newest report first, with the
// guide's columns and colours. Flags and statuses are written out, and NTE
// comments follow their result.
import { h, flagClass, flagText, formatTime, statusClass, statusText } from './format.js';

function reportKey(r) {
  return [r.hl7_message_id, r.filler_order_number || '', r.placer_order_number || '',
    r.report_code || ''].join('|');
}

export function groupReports(results) {
  const groups = new Map();
  for (const r of results) {
    const key = reportKey(r);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  }
  const reports = [...groups.values()].map((rows) => {
    rows.sort((a, b) => a.id - b.id);  // the order the lab sent them
    const newest = Math.max(...rows.map((r) => r.id));
    return { rows, newest, first: rows[0] };
  });
  reports.sort((a, b) => b.newest - a.newest);
  return reports;
}

function reportTitle(first) {
  if (first.report_name && first.report_code) return `${first.report_name} (${first.report_code})`;
  return first.report_name || first.report_code || 'Lab report';
}

function resultRow(r) {
  const flag = r.abnormal_flag || '';
  const cls = ['result', flagClass(flag)].filter(Boolean).join(' ');
  const flagCell = h('td', { class: 'flag' }, h('span', { class: 'flag-text' }, flagText(flag)));
  if (r.critical && r.acknowledged) {
    flagCell.append(h('span', { class: 'ack-note' },
      `Acknowledged by ${r.acknowledged_by} ${formatTime(r.acknowledged_at)}`));
  }
  const rows = [
    h('tr', { class: cls, dataset: { resultId: String(r.id), testCode: r.test_code, flag } },
      h('th', { scope: 'row' }, r.test_name || r.test_code),
      h('td', { class: 'value' }, r.value ?? ''),
      h('td', {}, r.units ?? ''),
      h('td', {}, r.reference_range ?? ''),
      flagCell,
      h('td', {}, h('span', { class: `status ${statusClass(r.result_status)}` }, statusText(r.result_status))),
      h('td', {}, h('time', { datetime: r.received_at }, formatTime(r.received_at)))),
  ];
  if (Array.isArray(r.comments) && r.comments.length > 0) {
    rows.push(h('tr', { class: 'comment-row', dataset: { commentFor: String(r.id) } },
      h('td', { colspan: 7 },
        h('span', { class: 'comment-label' }, `Lab comment on ${r.test_name || r.test_code}: `),
        r.comments.join(' '))));
  }
  return rows;
}

export function renderReports(container, results) {
  const reports = groupReports(results);
  if (reports.length === 0) {
    container.replaceChildren(h('p', { class: 'empty' }, 'No lab results for this patient.'));
    return;
  }
  container.replaceChildren(...reports.map(({ rows, first }, i) => {
    const headingId = `report-${i}`;
    const statuses = new Set(rows.map((r) => r.result_status));
    const overall = statuses.has('C') ? 'C' : statuses.has('P') ? 'P' : statuses.size === 1 ? [...statuses][0] : '';
    return h('section', { class: 'report', 'aria-labelledby': headingId },
      h('h4', { id: headingId },
        reportTitle(first),
        overall ? h('span', { class: `status ${statusClass(overall)}` }, statusText(overall)) : null),
      h('p', { class: 'report-meta' },
        `Collected ${formatTime(first.observation_date)} · received ${formatTime(first.received_at)}` +
        (first.sending_facility ? ` · ${first.sending_facility}` : '') +
        (first.filler_order_number ? ` · lab order ${first.filler_order_number}` : '')),
      h('div', { class: 'table-wrap', role: 'region', tabindex: 0, 'aria-labelledby': headingId },
        h('table', { class: 'results' },
          h('caption', { class: 'visually-hidden' }, `${reportTitle(first)} results`),
          h('thead', {}, h('tr', {},
            ...['Test', 'Result', 'Units', 'Reference range', 'Flag', 'Status', 'Received']
              .map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, rows.flatMap(resultRow)))));
  }));
}
