// The token, authenticated JSON calls and live WebSocket streams, shared by both pages.

const TOKEN_KEY = "neira.token";

/** An API error carrying the contract's body: {code, reason, ...}. */
export class ApiError extends Error {
  constructor(status, body) {
    const reason = body?.reason || body?.detail || `HTTP ${status}`;
    super(reason);
    this.status = status;
    this.code = body?.code || (status ? "http_error" : "network");
    this.reason = reason;
    this.body = body || {};
  }
}

/** Move a `#token=` from the address into storage, and take it out of the address and history. */
export function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = params.get("token");
  if (token === null) return;
  if (token) setToken(token);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
}

export const getToken = () => localStorage.getItem(TOKEN_KEY) || "";
export const setToken = (token) => localStorage.setItem(TOKEN_KEY, token.trim());
export const clearToken = () => localStorage.removeItem(TOKEN_KEY);

let unauthorizedHandler = () => {};
/** Called with the ApiError whenever the server answers 401 or closes a stream as unauthorised. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** Call the API with the bearer token; resolve to the JSON body, reject with an ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, { code: "network", reason: "" });
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data && typeof data === "object" ? data : { reason: text || res.statusText });
    if (res.status === 401) unauthorizedHandler(err);
    throw err;
  }
  if (Array.isArray(data)) nextPages.set(data, nextLink(res.headers.get("Link")));
  return data;
}

// A list answer → the URL of its next page (from `Link: <…>; rel="next"`), or null on the last page.
const nextPages = new WeakMap();
const MAX_PAGES = 50;

function nextLink(header) {
  const m = /<([^>]*)>\s*;\s*rel="?next"?/.exec(header || "");
  return m ? m[1] : null;
}

/** GET a list route and every page after it (the server pages at 100 items by default). */
export async function apiList(path) {
  let page = await api("GET", path);
  const all = [...page];
  for (let n = 1; nextPages.get(page) && n < MAX_PAGES; n += 1) {
    page = await api("GET", nextPages.get(page));
    all.push(...page);
  }
  return all;
}

/** The ws:// or wss:// address of a stream; the token goes in the query only here. */
export function wsUrl(path) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${path}?token=${encodeURIComponent(getToken())}`;
}

// Close codes the server uses for refusals (4000 + HTTP status): retrying will not help.
const FINAL_CLOSE = new Set([1008, 4400, 4401, 4403, 4404]);

/**
 * Keep a WebSocket open to `path`, reconnecting with backoff.
 * onFrame gets each parsed JSON frame; onStatus gets "connecting" | "open" | "retrying" | "closed";
 * done(frame) returning true closes the stream for good (e.g. a terminal state).
 */
export function openStream(path, { onFrame, onStatus = () => {}, onRefused = () => {}, done = () => false }) {
  let ws = null;
  let stopped = false;
  let attempt = 0;
  let timer = null;

  const connect = () => {
    if (stopped) return;
    onStatus("connecting");
    ws = new WebSocket(wsUrl(path));
    ws.addEventListener("open", () => {
      attempt = 0;
      onStatus("open");
    });
    ws.addEventListener("message", (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      onFrame(frame);
      if (done(frame)) stop();
    });
    ws.addEventListener("close", (ev) => {
      ws = null;
      if (stopped) return;
      if (FINAL_CLOSE.has(ev.code)) {
        stopped = true;
        onStatus("closed");
        const status = ev.code === 1008 ? 403 : ev.code - 4000;
        const err = new ApiError(status, { code: status === 401 ? "unauthorized" : "closed", reason: ev.reason });
        if (status === 401) unauthorizedHandler(err);
        onRefused(err);
        return;
      }
      onStatus("retrying");
      attempt += 1;
      timer = setTimeout(connect, Math.min(500 * 2 ** (attempt - 1), 8000));
    });
  };

  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    // Closing a socket that is still connecting makes the browser log an error; close it once open.
    const sock = ws;
    if (sock?.readyState === WebSocket.CONNECTING) sock.addEventListener("open", () => sock.close(1000));
    else if (sock?.readyState === WebSocket.OPEN) sock.close(1000);
    onStatus("closed");
  };

  connect();
  return { close: stop };
}
