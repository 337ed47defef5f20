// What both pages share around their content: sign-in, language switch, sign-out and notices.

import { api, clearToken, getToken, onUnauthorized, setToken, takeTokenFromFragment } from "./api.js";
import { applyI18n, mountLangSwitch, t } from "./i18n.js";

const $ = (sel) => document.querySelector(sel);

/** Wire the header and the sign-in form; call onReady once there is a token (and again after a new sign-in). */
export function initShell({ onReady }) {
  takeTokenFromFragment();
  applyI18n();
  mountLangSwitch($("#lang-switch"));

  const login = $("#login");
  const app = $("#app");
  const form = $("#login-form");
  const input = $("#token-input");
  const message = $("#login-error");

  const showLogin = (again) => {
    message.textContent = again ? t("login.again") : "";
    message.hidden = !again;
    login.hidden = false;
    app.hidden = true;
    $("#logout").hidden = true;
    input.value = "";
    input.focus();
  };
  const showApp = () => {
    login.hidden = true;
    app.hidden = false;
    $("#logout").hidden = false;
  };

  // Check the token with a cheap read before showing the page; a 401 brings the form back.
  const enter = async () => {
    try {
      await api("GET", "/api/neira/safe-mode");
    } catch (err) {
      if (err.status === 401) return;
    }
    showApp();
    onReady();
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!input.value.trim()) return;
    setToken(input.value);
    enter();
  });
  $("#logout").addEventListener("click", () => {
    clearToken();
    showLogin(false);
  });
  onUnauthorized(() => {
    clearToken();
    showLogin(true);
  });

  if (getToken()) {
    enter();
  } else {
    showLogin(false);
  }
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
