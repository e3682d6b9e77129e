// The API client: one fetch wrapper, problem+json errors, and the browser session.
//
// The access token lives only in this module's memory; the refresh token is an HttpOnly
// cookie the page never sees. A refresh rotates that cookie and reusing an old one revokes
// the whole session, so at most one refresh is ever in flight (`refreshing`).

const BASE = "/api/v1";
const SESSION = `${BASE}/auth/session`;
// Without this header the session endpoints refuse the request (CSRF protection); it costs
// nothing on the others, so every request carries it.
const COMMON_HEADERS = { "X-Requested-With": "primetrade" };
const REFRESH_LEAD_SECONDS = 60;
const REFRESH_LEAD_SHARE = 0.2;
const ENDED_PROBLEM = {
  code: "session_ended",
  title: "Signed out",
  detail: "Your session has expired, sign in again.",
};
const NETWORK_PROBLEM = {
  status: 0,
  code: "network_error",
  title: "Can't reach the server",
  detail: "Check your connection and try again.",
};

export class ApiError extends Error {
  constructor(status, problem, headers = new Headers()) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code ?? "error";
    this.title = problem.title ?? "Something went wrong";
    this.detail = problem.detail ?? "";
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.headers = headers;
  }

  /** Seconds the server asked us to wait (Retry-After), or null. */
  get retryAfter() {
    const seconds = Number.parseInt(this.headers.get("Retry-After") ?? "", 10);
    return Number.isFinite(seconds) && seconds > 0 ? seconds : null;
  }
}

let accessToken = null;
let expiresAt = 0;
let refreshTimer = 0;
let refreshing = null;
let expiredHandler = () => {};

/** Called once the session is gone for good (refresh refused): the app goes to sign-in. */
export function onSessionExpired(handler) {
  expiredHandler = handler;
}

export function signedIn() {
  return accessToken !== null;
}

/** Sign in with a password; the cookie session starts. */
export async function signIn(email, password) {
  const response = await send("POST", SESSION, { body: { email, password } });
  startSession(await parse(response));
}

/**
 * Restore the session from the cookie on page load: false when there is none; rejects when
 * the server could not say (unreachable, rate limited), which is not the same as signed out.
 */
export function restoreSession() {
  return refresh();
}

/** End this session on the server too; the page forgets the token whatever happens. */
export async function signOut() {
  try {
    await send("DELETE", SESSION, { token: accessToken });
  } finally {
    endSession();
  }
}

/** A fresh access token from the cookie; shared by every caller while one is in flight. */
export function refresh() {
  refreshing ??= refreshOnce().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function refreshOnce() {
  const response = await send("POST", `${SESSION}/refresh`);
  if (response.status === 401) {
    endSession();
    return false;
  }
  startSession(await parse(response));
  return true;
}

function startSession(token) {
  accessToken = token.access_token;
  expiresAt = Date.now() + token.expires_in * 1000;
  const lead = Math.min(REFRESH_LEAD_SECONDS, token.expires_in * REFRESH_LEAD_SHARE);
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(silentRefresh, (token.expires_in - lead) * 1000);
}

function endSession() {
  accessToken = null;
  expiresAt = 0;
  clearTimeout(refreshTimer);
}

async function silentRefresh() {
  try {
    if (!(await refresh())) expiredHandler();
  } catch {
    // Offline for now: try again shortly; a request made meanwhile refreshes on its 401.
    refreshTimer = setTimeout(silentRefresh, 15_000);
  }
}

/** The token to send, refreshed first when a sleeping tab let it expire. */
async function currentToken() {
  if (accessToken !== null && Date.now() >= expiresAt - 5_000) await refresh();
  return accessToken;
}

/**
 * Call the API. Resolves to {status, data, headers}; rejects with ApiError (status 0 when
 * the server could not be reached). A 401 is answered with one refresh and one replay.
 */
export async function request(method, path, options = {}) {
  const { auth = true } = options;
  const token = auth ? await currentToken() : null;
  if (auth && token === null) {
    expiredHandler();
    throw new ApiError(401, ENDED_PROBLEM);
  }
  let response = await send(method, BASE + path, { ...options, token });
  if (response.status === 401 && auth) {
    // A refresh that fails for another reason than a 401 (offline, rate limited) rejects here:
    // the caller shows that problem, and the session is not given up for it.
    if (!(await refresh())) {
      expiredHandler();
      throw await problemOf(response);
    }
    response = await send(method, BASE + path, { ...options, token: accessToken });
  }
  return { status: response.status, data: await parse(response), headers: response.headers };
}

export const api = {
  get: async (path, options) => (await request("GET", path, options)).data,
  post: async (path, body, options) => (await request("POST", path, { ...options, body })).data,
  patch: async (path, body, options) => (await request("PATCH", path, { ...options, body })).data,
  delete: async (path, options) => (await request("DELETE", path, options)).data,
};

async function send(method, url, { body, query, headers, token } = {}) {
  const all = { ...COMMON_HEADERS, ...headers };
  if (body !== undefined) all["Content-Type"] = "application/json";
  if (token) all.Authorization = `Bearer ${token}`;
  try {
    return await fetch(withQuery(url, query), {
      method,
      headers: all,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ApiError(0, NETWORK_PROBLEM);
  }
}

function withQuery(url, query) {
  if (!query) return url;
  const search = query instanceof URLSearchParams ? query : toSearchParams(query);
  const text = search.toString();
  return text ? `${url}?${text}` : url;
}

function toSearchParams(values) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(values)) {
    for (const item of [value].flat()) {
      if (item !== undefined && item !== null && item !== "") search.append(key, String(item));
    }
  }
  return search;
}

async function parse(response) {
  if (!response.ok) throw await problemOf(response);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") ?? "";
  return type.includes("json") ? response.json() : response.text();
}

async function problemOf(response) {
  let problem = { title: response.statusText || "Request failed" };
  try {
    problem = await response.json();
  } catch {
    // Not problem+json (a proxy's error page, say): the status line is all there is.
  }
  return new ApiError(response.status, problem, response.headers);
}

/** A random key for Idempotency-Key; randomUUID exists only on secure origins. */
export function newIdempotencyKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
