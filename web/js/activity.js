// The panel's activity view: the newest events and audit records, live, filterable by type and subject.
//
// Events arrive through the panel's one events stream (organs.js hands each frame to `activityEvent`); audit
// records are read after each burst of events, from the last one seen on. Both lists are read oldest first,
// page by page, and only the newest KEEP of each are kept. Filters work on what is kept, in the page.

import { api } from "./api.js";
import { stateLabel, t } from "./i18n.js";
import { el, formatTime, showError, throttle } from "./shell.js";

const $ = (sel) => document.querySelector(sel);
const KEEP = 200; // rows kept per list
const STEP = 25; // rows shown at first, and added by "Show more"
const PAGE = { events: 1000, audit: 1000 }; // the routes' largest page
const state = {
  view: "events",
  events: [], // newest last
  audit: [],
  last: { events: 0, audit: 0 }, // highest seq read so far
  loading: { events: null, audit: null },
  shown: STEP, // rows on screen (newest first)
};

/** One row's type, subject and detail text, whatever list it came from. */
function describe(kind, item) {
  if (kind === "events") {
    const d = item.data || {};
    const to = d.to ?? d.state;
    const move = d.from !== undefined || d.to !== undefined ? `${fmt(d.from)} → ${fmt(to)}` : to ? stateLabel(to) : "";
    return { type: item.type, subject: item.subject, detail: [move, d.reason].filter(Boolean).join(" · ") };
  }
  const move = item.before !== null || item.after !== null ? `${fmt(item.before)} → ${fmt(item.after)}` : "";
  return { type: item.action, subject: item.subject, detail: [item.actor, move, item.reason].filter(Boolean).join(" · ") };
}

/** A state (localised), any other value as JSON, nothing as ∅. */
const fmt = (value) => (value === null || value === undefined ? "∅" : typeof value === "object" ? JSON.stringify(value) : stateLabel(value));

function keep(kind, items) {
  if (!items.length) return;
  state[kind] = state[kind].concat(items).slice(-KEEP);
  state.last[kind] = Math.max(state.last[kind], items.at(-1).seq);
}

/** Read everything after the last seq seen, page by page (one read at a time per list). */
function load(kind) {
  state.loading[kind] ??= (async () => {
    const path = kind === "events" ? "/api/neira/events" : "/api/neira/audit";
    try {
      for (;;) {
        const page = await api("GET", `${path}?since=${state.last[kind]}&limit=${PAGE[kind]}`);
        keep(kind, Array.isArray(page) ? page : []);
        if (!Array.isArray(page) || page.length < PAGE[kind]) break;
      }
    } catch (err) {
      showError(err);
    } finally {
      state.loading[kind] = null;
      render();
    }
  })();
  return state.loading[kind];
}

const loadAuditSoon = throttle(() => load("audit"), 500);

/** Catch up on both lists (on start and after every reconnection of the events stream). */
export function loadActivity() {
  return Promise.all([load("events"), load("audit")]);
}

/** A frame of the events stream: shown at once; the audit record of the same change is read soon after. */
export function activityEvent(frame) {
  if (!frame || frame.type === "stream.lagged") {
    load("events"); // frames were dropped: read them from storage
  } else if (frame.seq > state.last.events) {
    keep("events", [frame]);
    render();
  }
  loadAuditSoon();
}

// ---- rendering ----------------------------------------------------------------------------------

function matches(row) {
  const type = $("#activity-type").value;
  const subject = $("#activity-subject").value.trim().toLowerCase();
  return (!type || row.type === type) && (!subject || String(row.subject ?? "").toLowerCase().includes(subject));
}

function renderTypes(rows) {
  const select = $("#activity-type");
  const chosen = select.value;
  const types = [...new Set(rows.map((r) => r.type))].sort();
  if (chosen && !types.includes(chosen)) types.unshift(chosen);
  select.replaceChildren(el("option", { value: "" }, t("activity.alltypes")), ...types.map((ty) => el("option", { value: ty }, ty)));
  select.value = chosen;
}

function row(r) {
  const time = formatTime(r.at);
  const subject = el("button", { type: "button", class: "link-button mono", title: t("activity.bysubject"), onclick: () => filterSubject(r.subject) }, r.subject ?? "—");
  return el(
    "tr",
    { role: "row", dataset: { seq: String(r.seq), type: r.type } },
    el("td", { role: "cell", class: "mono", dataset: { label: "#" } }, String(r.seq)),
    el("td", { role: "cell", dataset: { label: t("col.time") } }, el("time", { datetime: time.iso || null }, time.text)),
    el("td", { role: "cell", class: "mono", dataset: { label: t("col.type") } }, r.type),
    el("td", { role: "cell", dataset: { label: t("col.subject") } }, subject),
    el("td", { role: "cell", class: "activity-detail", dataset: { label: t("col.detail") } }, r.detail || "—"),
  );
}

function filterSubject(subject) {
  $("#activity-subject").value = subject ?? "";
  refilter();
}

/** A new view or filter starts again from the newest rows. */
function refilter() {
  state.shown = STEP;
  render();
}

function render() {
  const kind = state.view;
  const rows = state[kind].map((item) => ({ seq: item.seq, at: item.at, ...describe(kind, item) }));
  renderTypes(rows);
  const matching = rows.filter(matches).reverse(); // newest first
  const shown = matching.slice(0, state.shown);
  $("#activity-body").replaceChildren(...shown.map(row));
  $("#activity-table").hidden = shown.length === 0;
  $("#activity-empty").hidden = shown.length > 0;
  $("#activity-more").hidden = matching.length <= shown.length;
  $("#activity-empty").textContent = rows.length ? t("activity.nomatch") : t("activity.empty");
  for (const btn of document.querySelectorAll("#activity-view button[data-view]")) {
    btn.setAttribute("aria-pressed", String(btn.dataset.view === kind));
  }
}

$("#activity-view").addEventListener("click", (ev) => {
  const btn = ev.target.closest("button[data-view]");
  if (!btn) return;
  state.view = btn.dataset.view;
  $("#activity-type").value = "";
  refilter();
});
$("#activity-type").addEventListener("change", refilter);
$("#activity-subject").addEventListener("input", refilter);
$("#activity-more").addEventListener("click", () => {
  state.shown += STEP;
  render();
});
document.addEventListener("langchange", render);
