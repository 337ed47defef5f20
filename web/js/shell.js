// What both pages share around their content: sign-in, language switch, sign-out and notices.

import { loadSession, onUnauthorized, signOut } from "./api.js";
import { applyI18n, mountLangSwitch, t } from "./i18n.js";

const $ = (sel) => document.querySelector(sel);

/**
 * Wire the header and the sign-in card; call onReady once the page is signed in. The page signs in through the
 * one-time link `neira serve` prints (GET /login?code=… sets an HttpOnly session cookie); without a session
 * the card says how to get a link, and a 401 later (session ended, server restarted) brings it back.
 */
export function initShell({ onReady }) {
  applyI18n();
  mountLangSwitch($("#lang-switch"));

  const login = $("#login");
  const app = $("#app");
  const message = $("#login-error");
  let signedIn = false;

  const showLogin = (why) => {
    signedIn = false;
    message.textContent = why ? t(why) : "";
    message.hidden = !why;
    login.hidden = false;
    app.hidden = true;
    $("#logout").hidden = true;
    $("#login-retry").focus();
  };
  const showApp = () => {
    signedIn = true;
    login.hidden = true;
    app.hidden = false;
    $("#logout").hidden = false;
  };

  // Ask the server whether this page has a session before showing anything that needs one.
  const enter = async () => {
    try {
      await loadSession();
    } catch (err) {
      showLogin(err.status === 401 ? "" : err.code === "network" ? "error.network" : "error.generic");
      return;
    }
    showApp();
    onReady();
  };
  $("#login-retry").addEventListener("click", enter);
  $("#logout").addEventListener("click", async () => {
    try {
      await signOut();
    } catch (err) {
      if (err.status !== 401) return showError(err);
    }
    // A fresh page: every stream of the old session is closed, nothing of it stays in memory.
    location.replace(location.pathname);
  });
  onUnauthorized(() => {
    if (signedIn) showLogin("login.ended");
  });

  enter();
}

/** Show a short notice; errors stay until dismissed, other notices fade after a few seconds. */
export function notify(text, kind = "info") {
  const box = $("#toasts");
  const item = document.createElement("div");
  item.className = `toast toast-${kind}`;
  // The container is a polite live region; errors interrupt.
  if (kind === "error") item.setAttribute("role", "alert");
  const span = document.createElement("span");
  span.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "icon-button";
  close.setAttribute("aria-label", t("dismiss"));
  close.textContent = "×";
  close.addEventListener("click", () => item.remove());
  item.append(span, close);
  box.append(item);
  if (kind !== "error") setTimeout(() => item.remove(), 5000);
  return item;
}

/** Show an API error by its reason (401s are handled by the sign-in form instead). */
export function showError(err) {
  if (err?.status === 401) return;
  const text = err?.code === "network" ? t("error.network") : err?.reason || err?.message || t("error.generic");
  notify(text, "error");
}

/** Milliseconds since the epoch from an ISO string or epoch seconds/ms; NaN when it is neither. */
export function toMs(value) {
  if (value === undefined || value === null || value === "") return Number.NaN;
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
  if (/^\d+(\.\d+)?$/.test(String(value))) return toMs(Number(value));
  return new Date(value).getTime();
}

/** Format an ISO time (or epoch seconds/ms) as a short local time, with the full value for <time>. */
export function formatTime(value) {
  if (value === undefined || value === null || value === "") return { text: "—", iso: "" };
  const date = new Date(toMs(value));
  if (Number.isNaN(date.getTime())) return { text: String(value), iso: "" };
  const sameDay = date.toDateString() === new Date().toDateString();
  const opts = sameDay
    ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
    : { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  return { text: date.toLocaleString(document.documentElement.lang || undefined, opts), iso: date.toISOString() };
}

/** Create an element with attributes and children in one call. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") node.style.cssText = value; // through the CSSOM: the CSP refuses style attributes
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Run fn at most once per `ms`, always running the last call. */
export function throttle(fn, ms) {
  let timer = null;
  let again = false;
  const run = () => {
    timer = null;
    if (again) {
      again = false;
      fn();
      timer = setTimeout(run, ms);
    }
  };
  return () => {
    again = true;
    if (!timer) run();
  };
}

/** The list in a body that is a list, or holds one under one of `keys`. */
export const listOf = (data, ...keys) => {
  if (Array.isArray(data)) return data;
  for (const key of keys) if (Array.isArray(data?.[key])) return data[key];
  return [];
};
