// banner.js: the critical-result banner, on every view while signed in.
// It lists each unacknowledged critical result (patient, test, value,
// units, flag, age) with an Acknowledge button; acknowledging records the
// token's name and the time on the server and removes the alert for every
// open dashboard (the server tells them over the event stream).
import * as api from './api.js';
import { h, flagText, formatAge, formatTime } from './format.js';

export class CriticalBanner {
  constructor({ section, list, announcer, showMessage, openPatient }) {
    this.section = section;
    this.list = list;
    this.announcer = announcer;
    this.showMessage = showMessage;
    this.openPatient = openPatient;
    this.criticals = new Map();  // result id -> result
    this.announced = new Set();
    this.refreshing = null;
    this.again = false;
    this.ageTimer = null;
  }

  start() {
    this.ageTimer = setInterval(() => this.updateAges(), 15000);
    return this.refresh();
  }

  stop() {
    clearInterval(this.ageTimer);
    this.criticals.clear();
    this.announced.clear();
    this.render();
  }

  // Re-reads the open criticals; calls made while one runs coalesce.
  async refresh() {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.again = false;
        try {
          const open = await api.get('/api/lab-results/critical?acknowledged=false&limit=200');
          this.criticals = new Map(open.map((r) => [r.id, r]));
          this.render();
        } catch (e) {
          if (e.status !== 401) this.showMessage(`Critical results could not be checked: ${e.message}`);
        }
      } while (this.again);
    })();
    try {
      await this.refreshing;
    } finally {
      this.refreshing = null;
    }
  }

  removed(resultId) {
    if (this.criticals.delete(resultId)) this.render();
  }

  announce(text) {
    this.announcer.textContent = '';
    // A fresh text node after clearing makes screen readers speak it again.
    setTimeout(() => { this.announcer.textContent = text; }, 50);
  }

  render() {
    const sorted = [...this.criticals.values()].sort((a, b) => b.id - a.id);
    const fresh = sorted.filter((r) => !this.announced.has(r.id));
    const focusedId = document.activeElement?.dataset?.resultId;
    this.list.replaceChildren(...sorted.map((r) => this.item(r)));
    this.section.hidden = sorted.length === 0;
    if (fresh.length > 0) {
      for (const r of fresh) this.announced.add(r.id);
      const first = fresh[0];
      this.announce(
        `Critical result: ${first.test_name || first.test_code} ${first.value ?? ''} ${first.units ?? ''}, ` +
        `${flagText(first.abnormal_flag)}, patient ${first.patient_id}` +
        (fresh.length > 1 ? `, and ${fresh.length - 1} more` : ''));
    }
    if (focusedId) this.list.querySelector(`button[data-result-id="${CSS.escape(focusedId)}"]`)?.focus();
  }

  item(r) {
    const name = r.test_name || r.test_code;
    const ack = h('button', {
      type: 'button',
      class: 'ack',
      dataset: { resultId: String(r.id) },
      'aria-label': `Acknowledge ${name} ${r.value ?? ''} for patient ${r.patient_id}`,
      onclick: (e) => this.acknowledge(r, e.currentTarget),
    }, 'Acknowledge');
    return h('li', { class: 'critical-item', dataset: { resultId: String(r.id) } },
      h('div', { class: 'critical-text' },
        h('button', {
          type: 'button',
          class: 'link patient-link',
          onclick: () => this.openPatient(String(r.patient_id)),
        }, `Patient ${r.patient_id}`),
        h('span', { class: 'critical-test' }, name),
        h('span', { class: 'critical-value' }, `${r.value ?? ''} ${r.units ?? ''}`.trim()),
        h('span', { class: 'critical-flag' }, flagText(r.abnormal_flag)),
        h('time', { class: 'age', datetime: r.received_at, title: formatTime(r.received_at) },
          `received ${formatAge(r.received_at)}`)),
      ack);
  }

  updateAges() {
    for (const node of this.list.querySelectorAll('time.age')) {
      node.textContent = `received ${formatAge(node.getAttribute('datetime'))}`;
    }
  }

  async acknowledge(r, button) {
    button.disabled = true;
    button.textContent = 'Acknowledging…';
    const items = [...this.list.querySelectorAll('button.ack')];
    const next = items[items.indexOf(button) + 1] || items[items.indexOf(button) - 1];
    try {
      const done = await api.post(`/api/lab-results/${r.id}/acknowledge`, {});
      this.criticals.delete(r.id);
      this.render();
      this.announce(`Acknowledged ${r.test_name || r.test_code} for patient ${r.patient_id} as ${done.acknowledged_by}.`);
    } catch (e) {
      if (e.status === 409) {
        this.criticals.delete(r.id);
        this.render();
        this.announce('Already acknowledged by someone else.');
      } else {
        button.disabled = false;
        button.textContent = 'Acknowledge';
        this.showMessage(`Could not acknowledge: ${e.message}`);
        return;
      }
    }
    const target = next && this.list.contains(next) ? next : document.getElementById('main');
    target.focus();
  }
}
