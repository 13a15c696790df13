// live.js: what is new, as soon as it is stored. Listens to GET /api/events
// (server-sent events) with a single-use ticket from POST
// /api/events/ticket, because EventSource cannot send the token as a header
// and the token must never be put in a URL. When the stream is down (or
// EventSource is missing) it polls instead, and it reconnects with backoff.
import * as api from './api.js';

const POLL_MS = 5000;          // fallback polling while the stream is down
const RESYNC_MS = 30000;       // full re-read even while live (acks made over gRPC, other replicas)
const MAX_BACKOFF_MS = 30000;

export class LiveFeed {
  // handlers: {result(event), acknowledged(event), order(event), resync(), status(text, live)}
  constructor(handlers) {
    this.handlers = handlers;
    this.source = null;
    this.lastResultId = 0;
    this.backoff = 1000;
    this.stopped = true;
    this.pollTimer = null;
    this.resyncTimer = null;
    this.reconnectTimer = null;
  }

  start() {
    this.stopped = false;
    this.resyncTimer = setInterval(() => this.handlers.resync(), RESYNC_MS);
    this.connect();
  }

  stop() {
    this.stopped = true;
    this.closeSource();
    clearInterval(this.resyncTimer);
    clearInterval(this.pollTimer);
    clearTimeout(this.reconnectTimer);
    this.pollTimer = null;
  }

  closeSource() {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  startPolling(reason) {
    this.handlers.status(`${reason} Checking every ${POLL_MS / 1000} s.`, false);
    if (!this.pollTimer) {
      this.pollTimer = setInterval(() => this.handlers.resync(), POLL_MS);
    }
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  scheduleReconnect() {
    if (this.stopped) return;
    clearTimeout(this.reconnectTimer);
    const jitter = Math.random() * 500;
    this.reconnectTimer = setTimeout(() => this.connect(), this.backoff + jitter);
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
  }

  async connect() {
    if (this.stopped) return;
    if (typeof EventSource === 'undefined') {
      this.startPolling('This browser has no live updates.');
      return;
    }
    let ticket;
    try {
      ticket = (await api.post('/api/events/ticket')).ticket;
    } catch (e) {
      if (e.status === 401) return;  // signed out by the api layer
      this.startPolling(e.status === 404 ? 'Live updates are off on this server.' : 'Live updates interrupted.');
      if (e.status !== 404 && e.status !== 403) this.scheduleReconnect();
      return;
    }
    if (this.stopped) return;
    const params = { ticket };
    if (this.lastResultId > 0) params.last_event_id = this.lastResultId;
    const source = new EventSource(`/api/events?${api.query(params)}`);
    this.source = source;
    const parse = (e) => {
      try {
        return JSON.parse(e.data);
      } catch {
        return null;
      }
    };
    source.addEventListener('ready', (e) => {
      const data = parse(e);
      this.backoff = 1000;
      this.stopPolling();
      this.handlers.status('Live', true);
      if (data && data.last_result_id > this.lastResultId) this.lastResultId = data.last_result_id;
      this.handlers.resync();
    });
    source.addEventListener('result', (e) => {
      const data = parse(e);
      if (!data) return;
      if (data.result_id > this.lastResultId) this.lastResultId = data.result_id;
      this.handlers.result(data);
    });
    source.addEventListener('acknowledged', (e) => {
      const data = parse(e);
      if (data) this.handlers.acknowledged(data);
    });
    source.addEventListener('order', (e) => {
      const data = parse(e);
      if (data) this.handlers.order(data);
    });
    source.addEventListener('resync', () => this.handlers.resync());
    source.addEventListener('unauthorized', () => {
      this.closeSource();
      this.handlers.unauthorized();
    });
    source.onerror = () => {
      // The ticket is spent, so the browser's own reconnect would be refused:
      // close and reconnect with a new ticket, polling meanwhile.
      if (this.source !== source) return;
      this.closeSource();
      this.startPolling('Live updates interrupted; reconnecting.');
      this.scheduleReconnect();
    };
  }
}
