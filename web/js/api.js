// The page session, authenticated JSON calls and live WebSocket streams, shared by both pages.
// The pages sign in with an HttpOnly session cookie (GET /login?code=…, printed by `neira serve`): no token is
// ever held by the page. Writes carry the session's CSRF token, kept in memory only, as X-Neira-CSRF.

const READS = new Set(["GET", "HEAD", "OPTIONS"]);
let csrf = "";

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

let unauthorizedHandler = () => {};
/** Called with the ApiError whenever the server answers 401 or closes a stream as unauthorised. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** Call the API with the session cookie; resolve to the JSON body, reject with an ApiError. */
export async function api(method, path, body) {
  return (await call(method, path, body)).data;
}

/**
 * Every item of a paged list route: follow its `Link: <…>; rel="next"` headers (contract §10) for at most
 * `maxPages` pages; `more` says whether items were left on the server.
 */
export async function apiList(path, maxPages = 10) {
  const items = [];
  let next = path;
  for (let page = 0; next && page < maxPages; page += 1) {
    const { data, res } = await call("GET", next);
    items.push(...(Array.isArray(data) ? data : []));
    next = nextLink(res.headers.get("Link"));
  }
  return { items, more: Boolean(next) };
}

/** The same-origin path of a `rel="next"` link, or null. */
function nextLink(header) {
  const found = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header || "");
  if (!found) return null;
  const url = new URL(found[1], location.href);
  return url.origin === location.origin ? url.pathname + url.search : null;
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (!READS.has(method) && csrf) headers["X-Neira-CSRF"] = csrf;
  const init = { method, headers, cache: "no-store", credentials: "same-origin" };
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
  return { data, res };
}

/** Ask the server who this page is signed in as: {role, csrf}; rejects with a 401 ApiError when it is not. */
export async function loadSession() {
  const session = await api("GET", "/api/neira/session");
  csrf = session?.csrf || "";
  return session;
}

/** End the page's session (the server deletes it and clears the cookie). */
export async function signOut() {
  try {
    await api("POST", "/logout");
  } finally {
    csrf = "";
  }
}

/** The ws:// or wss:// address of a stream (same origin: the session cookie goes with it). */
export function wsUrl(path) {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${path}`;
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
