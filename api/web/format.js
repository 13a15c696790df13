// format.js: DOM building and the wording of flags, statuses and times.
// Everything shown comes from the server, so text is always set as text
// (never parsed as HTML).

export function h(tag, attrs = {}, ...children) {
  const ns = attrs.svg ? 'http://www.w3.org/2000/svg' : null;
  const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'svg' || value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else if (key === 'class') node.setAttribute('class', value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  return h(tag, { ...attrs, svg: true }, ...children);
}

// OBX-8 abnormal flags (HL7 table 0078), written out so colour is never the
// only signal.
const FLAG_WORDS = {
  HH: 'Critical high',
  LL: 'Critical low',
  AA: 'Critical abnormal',
  H: 'High',
  L: 'Low',
  A: 'Abnormal',
  N: 'Normal',
  '>': 'Above linear range',
  '<': 'Below linear range',
  U: 'Significant change up',
  D: 'Significant change down',
  B: 'Better',
  W: 'Worse',
  S: 'Susceptible',
  R: 'Resistant',
  I: 'Intermediate',
};

export function flagText(flag) {
  if (!flag) return 'Normal';
  const words = FLAG_WORDS[flag];
  return words ? `${flag} · ${words}` : flag;
}

// The guide's colours: HH/LL red and bold, H/L yellow, others plain.
export function flagClass(flag) {
  if (flag === 'HH' || flag === 'LL' || flag === 'AA') return 'flag-critical';
  if (flag === 'H' || flag === 'L' || flag === 'A') return 'flag-abnormal';
  return '';
}

// OBX-11 result status (HL7 table 0085).
const STATUS_WORDS = {
  F: 'Final',
  P: 'Preliminary',
  C: 'Corrected',
  X: 'Cancelled',
  R: 'Not verified',
  I: 'Pending',
  S: 'Partial',
  D: 'Deleted',
  W: 'Wrong (withdrawn)',
  U: 'Final (status changed)',
};

export function statusText(status) {
  return STATUS_WORDS[status] || (status ? `Status ${status}` : 'Unknown');
}

export function statusClass(status) {
  if (status === 'F' || status === 'U') return 'status-final';
  if (status === 'C') return 'status-corrected';
  if (status === 'X' || status === 'D' || status === 'W') return 'status-withdrawn';
  return 'status-preliminary';
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});
const shortDate = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

export function formatTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

export function formatShortDate(date) {
  return shortDate.format(date);
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export function formatAge(iso, now = Date.now()) {
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) return '';
  const seconds = Math.round((then - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 60) return relative.format(seconds, 'second');
  if (abs < 3600) return relative.format(Math.round(seconds / 60), 'minute');
  if (abs < 86400) return relative.format(Math.round(seconds / 3600), 'hour');
  return relative.format(Math.round(seconds / 86400), 'day');
}

export function patientName(p) {
  const name = [p.family_name, p.given_name].filter(Boolean).join(', ');
  return name || 'Name not on file';
}

export function formatBirthDate(text) {
  if (!text || text.length < 4) return '';
  const y = text.slice(0, 4);
  const m = text.slice(4, 6);
  const d = text.slice(6, 8);
  return [y, m, d].filter(Boolean).join('-');
}

// "3.5-5.0", "<200", ">40" -> {low, high} (either may be missing).
export function parseRange(text) {
  if (!text) return null;
  const t = text.trim();
  let m = t.match(/^(-?\d+(?:\.\d+)?)\s*[-–]\s*(-?\d+(?:\.\d+)?)$/);
  if (m) return { low: Number(m[1]), high: Number(m[2]) };
  m = t.match(/^<=?\s*(-?\d+(?:\.\d+)?)$/);
  if (m) return { low: null, high: Number(m[1]) };
  m = t.match(/^>=?\s*(-?\d+(?:\.\d+)?)$/);
  if (m) return { low: Number(m[1]), high: null };
  return null;
}

export function numericValue(text) {
  if (text === undefined || text === null) return null;
  const t = String(text).trim();
  return /^-?\d+(?:\.\d+)?$/.test(t) ? Number(t) : null;
}
