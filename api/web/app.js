// app.js: the lab dashboard. Sign-in with an API token, patient search,
// the patient's results (grouped by report), trend, orders, and the
// critical-result banner, kept current by the live feed. No framework, no
// build step: ES modules served by lab-bridge itself at /lab.
import * as api from './api.js';
import { CriticalBanner } from './banner.js';
import { h, formatBirthDate, patientName } from './format.js';
import { LiveFeed } from './live.js';
import { OrderPanel } from './orders.js';
import { renderReports } from './results.js';
import { renderTrend, trendableTests } from './trend.js';

const $ = (id) => document.getElementById(id);

const state = {
  patientId: null,
  results: [],
  trendCode: null,
  live: null,
  refreshTimer: null,
};

// ---- messages -------------------------------------------------------------

function showMessage(text, kind = 'error') {
  const box = $('message');
  box.textContent = text;
  box.className = `notice ${kind}`;
  box.hidden = false;
}

function clearMessage() {
  $('message').hidden = true;
  $('message').textContent = '';
}

window.addEventListener('error', (e) => {
  showMessage(`Something went wrong in the page (${e.message}). Reload it; your sign-in is kept for this tab.`);
});
window.addEventListener('unhandledrejection', (e) => {
  const reason = e.reason;
  if (reason && reason.name === 'ApiError') {
    if (reason.status !== 401) showMessage(reason.message);
  } else {
    showMessage(`Something went wrong in the page (${reason?.message || reason}). Reload it; your sign-in is kept for this tab.`);
  }
});

// ---- the banner and the live feed ----------------------------------------

const banner = new CriticalBanner({
  section: $('critical-banner'),
  list: $('critical-list'),
  announcer: $('announcer'),
  showMessage,
  openPatient: (id) => openPatient(id, { focus: true }),
});

const orders = new OrderPanel({
  form: $('order-form'),
  tests: $('order-tests'),
  provider: $('order-provider'),
  priority: $('order-priority'),
  submit: $('order-submit'),
  error: $('order-error'),
  status: $('order-status'),
  list: $('orders'),
  showMessage,
});

function samePatient(id) {
  return state.patientId !== null && String(id) === state.patientId;
}

function scheduleResultsRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    loadResults();
    orders.load();  // an ORU can move an order to resulted
  }, 200);
}

function startLive() {
  state.live = new LiveFeed({
    result(e) {
      if (e.critical) banner.refresh();
      if (samePatient(e.patient_id)) scheduleResultsRefresh();
    },
    acknowledged(e) {
      banner.removed(e.result_id);
      if (samePatient(e.patient_id)) scheduleResultsRefresh();
    },
    order(e) {
      if (samePatient(e.patient_id)) orders.load();
    },
    resync() {
      banner.refresh();
      if (state.patientId !== null) {
        loadResults();
        orders.load();
      }
    },
    status(text, live) {
      const node = $('live-status');
      node.textContent = text;
      node.classList.toggle('is-live', live);
    },
    unauthorized() {
      signOut('Your session ended: the API token is no longer valid. Sign in again.');
    },
  });
  state.live.start();
}

// ---- sign-in --------------------------------------------------------------

function showSignIn(message) {
  $('dashboard-view').hidden = true;
  $('session').hidden = true;
  $('sign-in-view').hidden = false;
  const error = $('sign-in-error');
  const input = $('token');
  if (message) {
    error.textContent = message;
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
  } else {
    error.hidden = true;
    input.removeAttribute('aria-invalid');
  }
  input.value = '';
  input.focus();
}

function signOut(message) {
  api.setToken('');
  state.live?.stop();
  state.live = null;
  banner.stop();
  orders.hide();
  state.patientId = null;
  state.results = [];
  $('patient-view').hidden = true;
  clearMessage();
  showSignIn(message);
}

api.onUnauthorized(() => {
  signOut('Your session ended: the API token was not accepted (wrong, expired or revoked). Sign in again.');
});

async function enterDashboard() {
  $('sign-in-view').hidden = true;
  $('dashboard-view').hidden = false;
  $('session').hidden = false;
  startLive();
  await banner.start();
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('patient');
  if (fromHash) openPatient(fromHash, { focus: false });
}

$('sign-in-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const value = $('token').value.trim();
  const error = $('sign-in-error');
  if (!value) {
    error.textContent = 'Enter your API token.';
    error.hidden = false;
    $('token').setAttribute('aria-invalid', 'true');
    $('token').focus();
    return;
  }
  const button = e.submitter || $('sign-in-form').querySelector('button');
  button.disabled = true;
  try {
    // Checks the token before keeping it: results:read is what the
    // dashboard needs at the least.
    api.setToken(value);
    await api.get('/api/lab-results/critical?limit=1', { authenticate: true });
    clearMessage();
    await enterDashboard();
    $('patient-query').focus();
  } catch (err) {
    api.setToken('');
    if (err.status === 401) {
      showSignIn('That API token was not accepted. Check it and try again.');
    } else if (err.status === 403) {
      showSignIn('That API token may not read results (it needs the role results:read).');
    } else {
      showSignIn(err.message);
    }
  } finally {
    button.disabled = false;
  }
});

$('sign-out').addEventListener('click', () => signOut(''));

// ---- patient search and view ---------------------------------------------

$('patient-search').addEventListener('submit', async (e) => {
  e.preventDefault();
  const q = $('patient-query').value.trim();
  const error = $('search-error');
  const status = $('search-status');
  const list = $('patient-matches');
  error.hidden = true;
  $('patient-query').removeAttribute('aria-invalid');
  if (!q) {
    error.textContent = 'Enter a PMS patient id or a name.';
    error.hidden = false;
    $('patient-query').setAttribute('aria-invalid', 'true');
    $('patient-query').focus();
    return;
  }
  status.textContent = 'Searching…';
  list.replaceChildren();
  try {
    const found = await api.get(`/api/patients?${api.query({ q, limit: 20 })}`);
    status.textContent = found.length === 0
      ? `No patient matches “${q}”. Results appear here once a lab has sent some.`
      : `${found.length} patient${found.length > 1 ? 's' : ''} found.`;
    list.replaceChildren(...found.map((p) => h('li', {},
      h('button', {
        type: 'button', class: 'link patient-match', dataset: { patientId: String(p.patient_id) },
        onclick: () => openPatient(String(p.patient_id), { focus: true, patient: p }),
      },
      h('strong', {}, patientName(p)),
      ` · PMS id ${p.patient_id}`,
      p.birth_date ? ` · born ${formatBirthDate(p.birth_date)}` : '',
      p.sex ? ` · ${p.sex}` : ''))));
    if (found.length === 1) list.querySelector('button').focus();
  } catch (err) {
    status.textContent = '';
    if (err.status === 422) {
      error.textContent = err.message;
      error.hidden = false;
      $('patient-query').setAttribute('aria-invalid', 'true');
    } else if (err.status !== 401) {
      showMessage(`Search failed: ${err.message}`);
    }
  }
});

async function openPatient(id, { focus, patient } = {}) {
  state.patientId = String(id);
  state.results = [];
  state.trendCode = null;
  history.replaceState(null, '', `#${new URLSearchParams({ patient: state.patientId })}`);
  $('patient-view').hidden = false;
  const title = $('patient-title');
  title.textContent = patient ? `${patientName(patient)} · PMS id ${state.patientId}` : `Patient ${state.patientId}`;
  $('reports').replaceChildren();
  $('trend').replaceChildren();
  if (focus) title.focus();
  if (!patient) {
    api.get(`/api/patients?${api.query({ q: state.patientId, limit: 1 })}`).then((found) => {
      const p = found.find((x) => String(x.patient_id) === state.patientId);
      if (p) title.textContent = `${patientName(p)} · PMS id ${state.patientId}`;
    }).catch(() => {});
  }
  await Promise.all([loadResults(), orders.show(state.patientId)]);
}

async function loadResults() {
  if (state.patientId === null) return;
  const patientId = state.patientId;
  const status = $('results-status');
  try {
    const results = await api.get(`/api/lab-results?${api.query({ patient_id: patientId, limit: 1000 })}`);
    if (patientId !== state.patientId) return;
    state.results = results;
    status.textContent = results.length === 1000 ? 'Showing the newest 1,000 results.' : `${results.length} result${results.length === 1 ? '' : 's'}.`;
    renderReports($('reports'), results);
    renderTrends();
  } catch (err) {
    if (err.status !== 401) status.textContent = `Results could not be loaded: ${err.message}`;
  }
}

function renderTrends() {
  const tests = trendableTests(state.results);
  const select = $('trend-test');
  const controls = $('trend-controls');
  if (tests.length === 0) {
    controls.hidden = true;
    $('trend').replaceChildren(h('p', { class: 'empty' },
      'A trend appears once a numeric test has two or more results.'));
    return;
  }
  // Keep the chosen test; else prefer one with a critical result.
  if (!tests.some((t) => t.code === state.trendCode)) {
    const critical = tests.find((t) => t.rows.some((r) => r.critical));
    state.trendCode = (critical || tests[0]).code;
  }
  controls.hidden = false;
  select.replaceChildren(...tests.map((t) => h('option', { value: t.code, selected: t.code === state.trendCode },
    `${t.name} (${t.rows.length} results)`)));
  select.value = state.trendCode;
  renderTrend($('trend'), tests.find((t) => t.code === state.trendCode));
}

$('trend-test').addEventListener('change', (e) => {
  state.trendCode = e.target.value;
  renderTrends();
});

// ---- start ----------------------------------------------------------------

if (api.token()) {
  enterDashboard().catch(() => {});
} else {
  showSignIn('');
}
