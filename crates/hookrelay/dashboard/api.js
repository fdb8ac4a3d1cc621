// The HTTP client: the bearer token kept in sessionStorage (gone when the tab closes), JSON in
// and out, and every failure turned into an ApiError carrying the contract's error fields.

import { parseJson } from "./dom.js";

const TOKEN_KEY = "hookrelay.token";
const KIND_KEY = "hookrelay.token_kind";
const TENANT_KEY = "hookrelay.tenant";

/** The tenant a server admin chose to act on in this tab (sent as X-Tenant-Id), or null. */
export function tenantOverride() {
  return sessionStorage.getItem(TENANT_KEY);
}

export function setTenantOverride(id) {
  if (id) sessionStorage.setItem(TENANT_KEY, id);
  else sessionStorage.removeItem(TENANT_KEY);
}

/** Headers every authenticated call carries besides the token. */
export function tenantHeaders() {
  const t = tenantOverride();
  return t ? { "X-Tenant-Id": t } : {};
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  /** `session` for a login token (logout revokes it), `api_key` for a pasted key. */
  get kind() {
    return sessionStorage.getItem(KIND_KEY) || "session";
  },
  set(token, kind) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(KIND_KEY, kind);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(KIND_KEY);
    sessionStorage.removeItem(TENANT_KEY);
  },
};

/** A failed call: `{status, code, message, requestId, details, retryAfter}`. */
export class ApiError extends Error {
  constructor({ status, code, message, requestId, details, retryAfter }) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.details = details || [];
    this.retryAfter = retryAfter;
  }
}

let unauthorized = () => {};

/** Called once per 401 on an authenticated call: the token expired or was revoked. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/** `?a=1&b=2`, leaving out empty values. */
export function queryString(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * Calls the API. Answers the parsed body (null for 204); throws ApiError. `auth: false` sends
 * no token (the login call); a 401 on an authenticated call signs out unless `signOutOn401` is
 * false; `lossless` keeps payload numbers exact.
 */
export async function api(path, { method = "GET", body, query, auth = true, signOutOn401 = true, lossless = false, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = session.token;
  if (auth && token) Object.assign(headers, { Authorization: `Bearer ${token}` }, tenantHeaders());
  let response;
  try {
    response = await fetch(path + queryString(query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw new ApiError({
      status: 0,
      code: "network",
      message: "Could not reach the hookrelay server. Check that it is running and try again.",
    });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = lossless ? parseJson(text) : JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;
  const e = (data && data.error) || {};
  const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
  const err = new ApiError({
    status: response.status,
    code: e.code || `http_${response.status}`,
    message: e.message || `The server answered ${response.status} ${response.statusText}`.trim(),
    requestId: e.request_id || response.headers.get("X-Request-Id") || undefined,
    details: e.details,
    retryAfter: Number.isFinite(retry) ? retry : undefined,
  });
  if (response.status === 401 && auth && signOutOn401) unauthorized(err);
  throw err;
}

export const get = (path, query) => api(path, { query });
/** A GET whose payloads are shown: numbers keep their exact text (see `parseJson`). */
export const getExact = (path) => api(path, { lossless: true });
export const post = (path, body) => api(path, { method: "POST", body: body === undefined ? {} : body });
export const patch = (path, body) => api(path, { method: "PATCH", body });
export const del = (path) => api(path, { method: "DELETE" });

/** Roles that may change things (webhooks, retries, sources). */
export function canWrite(me) {
  return !!me && (me.role === "admin" || me.role === "editor");
}

/** Roles that may read the dashboard's data at all. */
export function canRead(me) {
  return !!me && me.role !== "publisher";
}
