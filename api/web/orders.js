// orders.js: order entry and the patient's orders with their live status
// (pending -> sent -> acknowledged -> resulted, or failed/rejected/cancelled).
// The guide's test list; submit stays disabled until the order is valid.
import * as api from './api.js';
import { h, formatTime } from './format.js';

export const TESTS = [
  { code: 'CBC', name: 'Complete Blood Count' },
  { code: 'BMP', name: 'Basic Metabolic Panel' },
  { code: 'CMP', name: 'Comprehensive Metabolic Panel' },
  { code: 'UA', name: 'Urinalysis' },
  { code: 'TSH', name: 'Thyroid Stimulating Hormone' },
  { code: 'HBA1C', name: 'Hemoglobin A1c' },
  { code: 'LIPID', name: 'Lipid Panel' },
  { code: 'PT_INR', name: 'PT/INR' },
];

const PRIORITY = { R: 'Routine', S: 'Stat', A: 'ASAP' };
const STATUS = {
  pending: 'Pending (not yet sent to the lab)',
  sent: 'Sent to the lab',
  acknowledged: 'Accepted by the lab',
  resulted: 'Resulted',
  failed: 'Failed to send',
  rejected: 'Rejected by the lab',
  cancelled: 'Cancelled',
};
const OPEN = new Set(['pending', 'sent', 'acknowledged']);

// "Resulted" says whether every test is final: a preliminary or partial
// result is not the end of the order.
function statusText(o) {
  if (o.status === 'resulted' && o.result_status) {
    return o.result_status === 'preliminary' ? 'Resulted (preliminary)' : 'Resulted (final)';
  }
  return STATUS[o.status] || o.status;
}
const stateOf = (o) => `${o.status}/${o.result_status || ''}`;
const WATCH_MS = 2000;  // while an order is on its way, re-read its status

export class OrderPanel {
  constructor({ form, tests, provider, priority, submit, error, status, list, showMessage }) {
    Object.assign(this, { form, tests, provider, priority, submit, error, status, list, showMessage });
    this.patientId = null;
    this.orders = [];
    this.watchTimer = null;
    this.loading = null;
    this.tests.replaceChildren(...TESTS.map((t) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'test', value: t.code }),
      ` ${t.name} (${t.code})`)));
    this.form.addEventListener('input', () => this.validate());
    this.form.addEventListener('change', () => this.validate());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.place();
    });
  }

  selected() {
    return [...this.tests.querySelectorAll('input[name="test"]:checked')].map((i) => i.value);
  }

  validate() {
    const ok = this.patientId !== null && this.selected().length > 0 && this.provider.value.trim() !== '';
    this.submit.disabled = !ok || this.placing === true;
    const n = this.selected().length;
    this.submit.textContent = n > 0 ? `Place order (${n} test${n > 1 ? 's' : ''})` : 'Place order';
    return ok;
  }

  show(patientId) {
    this.patientId = patientId;
    this.form.reset();
    this.error.hidden = true;
    this.status.textContent = '';
    this.orders = [];
    this.list.replaceChildren();
    this.validate();
    return this.load();
  }

  hide() {
    this.patientId = null;
    clearTimeout(this.watchTimer);
  }

  async place() {
    if (!this.validate()) return;
    this.placing = true;
    this.validate();
    this.error.hidden = true;
    const patient = /^[1-9]\d{0,14}$/.test(this.patientId) ? Number(this.patientId) : this.patientId;
    try {
      const order = await api.post('/api/lab-orders', {
        patient_id: patient,
        test_codes: this.selected(),
        ordering_provider: this.provider.value.trim(),
        priority: this.priority.value,
      });
      this.status.textContent = `Order ${order.id} placed (${order.test_codes.join(', ')}, ${PRIORITY[order.priority]}): ${statusText(order)}.`;
      this.form.reset();
      this.upsert(order);
    } catch (e) {
      this.error.textContent = `The order was not placed. ${e.message}`;
      this.error.hidden = false;
    } finally {
      this.placing = false;
      this.validate();
    }
  }

  async cancel(order, button) {
    button.disabled = true;
    try {
      const done = await api.post(`/api/lab-orders/${order.id}/cancel`);
      this.status.textContent = `Order ${order.id} cancelled.`;
      this.upsert(done);
    } catch (e) {
      button.disabled = false;
      this.showMessage(`Order ${order.id} could not be cancelled: ${e.message}`);
      this.load();
    }
  }

  upsert(order) {
    const i = this.orders.findIndex((o) => o.id === order.id);
    if (i >= 0) {
      if (stateOf(this.orders[i]) !== stateOf(order)) {
        this.status.textContent = `Order ${order.id} is now ${statusText(order)}.`;
      }
      this.orders[i] = order;
    } else {
      this.orders.unshift(order);
    }
    this.render();
  }

  async load() {
    if (this.patientId === null) return;
    const patientId = this.patientId;
    if (this.loading) return this.loading;
    this.loading = (async () => {
      try {
        const orders = await api.get(`/api/lab-orders?${api.query({ patient_id: patientId, limit: 50 })}`);
        if (patientId !== this.patientId) return;
        for (const o of orders) {
          const before = this.orders.find((x) => x.id === o.id);
          if (before && stateOf(before) !== stateOf(o)) {
            this.status.textContent = `Order ${o.id} is now ${statusText(o)}.`;
          }
        }
        this.orders = orders;
        this.render();
      } catch (e) {
        if (e.status !== 401) this.showMessage(`Orders could not be loaded: ${e.message}`);
      }
    })();
    try {
      await this.loading;
    } finally {
      this.loading = null;
    }
  }

  // Orders on their way are re-read every 2 s until they settle, so
  // "sent" shows even when nothing else announces it.
  watch() {
    clearTimeout(this.watchTimer);
    if (this.patientId !== null &&
        this.orders.some((o) => OPEN.has(o.status) || o.result_status === 'preliminary')) {
      this.watchTimer = setTimeout(() => this.load(), WATCH_MS);
    }
  }

  render() {
    if (this.orders.length === 0) {
      this.list.replaceChildren(h('p', { class: 'empty' }, 'No orders for this patient yet.'));
      this.watch();
      return;
    }
    const focused = document.activeElement?.dataset?.cancelOrder;
    this.list.replaceChildren(h('div', { class: 'table-wrap', role: 'region', tabindex: 0, 'aria-label': 'Orders' },
      h('table', { class: 'orders' },
        h('caption', { class: 'visually-hidden' }, 'Orders for this patient, newest first'),
        h('thead', {}, h('tr', {}, ['Order', 'Tests', 'Priority', 'Provider', 'Status', 'Placed', '']
          .map((c) => h('th', { scope: 'col' }, c || h('span', { class: 'visually-hidden' }, 'Actions'))))),
        h('tbody', {}, this.orders.map((o) => h('tr', { dataset: { orderId: String(o.id), status: o.status, resultStatus: o.result_status || '' } },
          h('th', { scope: 'row' }, `#${o.id}`),
          h('td', {}, o.test_codes.join(', ')),
          h('td', { class: o.priority === 'S' ? 'priority-stat' : '' }, PRIORITY[o.priority] || o.priority),
          h('td', {}, o.ordering_provider || ''),
          h('td', {}, h('span', { class: `order-status order-${o.status}` }, statusText(o)),
            o.status === 'failed' && o.last_error ? h('span', { class: 'help' }, ` ${o.last_error}`) : null),
          h('td', {}, formatTime(o.created_at)),
          h('td', {}, OPEN.has(o.status) ? h('button', {
            type: 'button', class: 'secondary', dataset: { cancelOrder: String(o.id) },
            'aria-label': `Cancel order ${o.id}`,
            onclick: (e) => this.cancel(o, e.currentTarget),
          }, 'Cancel') : null)))))));
    if (focused) this.list.querySelector(`button[data-cancel-order="${CSS.escape(focused)}"]`)?.focus();
    this.watch();
  }
}
