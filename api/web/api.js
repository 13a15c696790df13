// api.js: the dashboard's only way to the server. The API token lives in
// sessionStorage (this tab, until sign-out or the tab closes) and goes out
// as a bearer header; every failure becomes an ApiError whose message a
// clinician can read.

const TOKEN_KEY = 'labbridge.token';

export class ApiError extends Error {
  constructor(message, status = 0, detail = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;  // 0: the server could not be reached
    this.detail = detail;
  }
}

let unauthorizedHandler = () => {};

// Called once with what to do when the token stops working (401).
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// FastAPI-shaped errors: {"detail": "..."} or {"detail": [{"loc", "msg"}]}.
function detailText(body) {
  if (!body || body.detail === undefined) return '';
  if (typeof body.detail === 'string') return body.detail;
  if (Array.isArray(body.detail)) {
    return body.detail
      .map((d) => {
        const field = Array.isArray(d.loc) ? d.loc[d.loc.length - 1] : '';
        return field ? `${field}: ${d.msg}` : d.msg;
      })
      .join('; ');
  }
  return '';
}

function messageFor(status, detail) {
  switch (status) {
    case 401:
      return 'The API token was not accepted: it is wrong, expired or revoked.';
    case 403:
      return `Your API token is not allowed to do this${detail ? ` (${detail})` : ''}.`;
    case 404:
      return detail || 'Not found.';
    case 409:
      return detail || 'This was changed by someone else meanwhile.';
    case 413:
      return 'The request was too large.';
    case 422:
      return detail ? `Please check: ${detail}.` : 'Please check the form.';
    case 429:
      return 'The server is busy. Try again in a moment.';
    case 503:
      return `lab-bridge is temporarily unavailable${detail ? ` (${detail})` : ''}. Try again in a moment.`;
    default:
      return status >= 500
        ? `lab-bridge had an internal error (HTTP ${status}). Try again; if it persists, call IT.`
        : detail || `The request failed (HTTP ${status}).`;
  }
}

export async function request(method, path, body, { authenticate = true, signal } = {}) {
  const headers = { Accept: 'application/json' };
  const bearer = authenticate ? token() : '';
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError('Cannot reach lab-bridge. Check the network; the page retries on its own.', 0);
  }
  let parsed = null;
  const text = await response.text();
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!response.ok) {
    const detail = detailText(parsed);
    const error = new ApiError(messageFor(response.status, detail), response.status, detail);
    if (response.status === 401 && authenticate) unauthorizedHandler(error);
    throw error;
  }
  return parsed;
}

export const get = (path, options) => request('GET', path, undefined, options);
export const post = (path, body, options) => request('POST', path, body, options);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  return q.toString();
}
