// The organs panel: live organs and cell records, their actions, gates and safe mode.

import { activityEvent, loadActivity } from "./activity.js";
import { api, apiList, openStream } from "./api.js";
import { stateLabel, t } from "./i18n.js";
import { loadCells, refreshCells } from "./cells.js";
import { legal, loadLifecycle } from "./lifecycle.js";
import { askReason, confirmAction } from "./confirm.js";
import { evidenceView, loadAnalysis } from "./evidence.js";
import { organCells } from "./records.js";
import { el, formatTime, initShell, listOf, notify, showError, throttle } from "./shell.js";
import { STAGES, setStage, stageBar, stateBadge } from "./stages.js";
import { loadTemplates } from "./templates.js";
import { renderMetrics, renderTimeline } from "./timeline.js";
import { renderRunFigures, tryBox } from "./tryit.js";

const $ = (sel) => document.querySelector(sel);
const organs = new Map(); // id → organ record as last seen
const openStatus = new Set(); // organ ids whose status row is open
let events = null;
let rank = 0; // order of first sight

// ---- organs ----------------------------------------------------------------

const OPEN_GATES = new Set(["experimental", "stable"]);
let gates = {}; // capability name → state, from the last load

async function loadOrgans() {
  // With the organ builder's gate closed every organ route answers 403: say so instead of asking.
  const gate = gates.organs_builder;
  const closed = gate !== undefined && !OPEN_GATES.has(gate);
  const notice = $("#organs-gate");
  notice.hidden = !closed;
  notice.textContent = closed ? t("organs.gate", { state: stateLabel(gate) }) : "";
  if (closed) {
    $("#organs-table").hidden = true;
    $("#organs-empty").hidden = true;
    return;
  }
  try {
    const list = listOf(await apiList("/organs?limit=1000"), "organs", "items");
    const seen = new Set();
    for (const organ of list) {
      seen.add(organ.id);
      const known = organs.get(organ.id);
      organs.set(organ.id, { ...known, ...organ, rank: known?.rank ?? (rank += 1) });
    }
    for (const id of [...organs.keys()]) if (!seen.has(id)) organs.delete(id);
    renderOrgans();
  } catch (err) {
    showError(err);
  }
}
const refreshOrgans = throttle(loadOrgans, 300);

function renderOrgans() {
  const body = $("#organs-body");
  // Newest first (the server lists oldest first); rows never jump around while builds move on.
  const sorted = [...organs.values()].sort((a, b) => b.rank - a.rank);
  const rows = [];
  for (const organ of sorted) {
    let row = body.querySelector(`tr[data-organ-id="${CSS.escape(organ.id)}"]`);
    if (!row) row = organRow(organ);
    updateOrganRow(row, organ);
    rows.push(row);
    const detail = body.querySelector(`tr[data-detail-for="${CSS.escape(organ.id)}"]`);
    if (detail && openStatus.has(organ.id)) rows.push(detail);
  }
  // Reorder by moving existing nodes, so the focused button keeps its focus.
  body.querySelectorAll("tr").forEach((tr) => !rows.includes(tr) && tr.remove());
  rows.forEach((row, i) => body.children[i] !== row && body.insertBefore(row, body.children[i] || null));
  $("#organs-empty").hidden = organs.size > 0;
  $("#organs-table").hidden = organs.size === 0;
}

function organRow(organ) {
  const id = organ.id;
  const detailId = `status-${id.replace(/[^\w-]/g, "_")}`;
  const statusBtn = el("button", { type: "button", class: "button small", "aria-expanded": "false", "aria-controls": detailId, dataset: { act: "status" }, onclick: () => toggleStatus(id) });
  const cancelBtn = el("button", { type: "button", class: "button small danger", dataset: { act: "cancel" }, onclick: () => cancelBuild(id) });
  const rebuildBtn = el("button", { type: "button", class: "button small", dataset: { act: "rebuild" }, onclick: () => rebuild(id) });
  const approveBtn = el("button", { type: "button", class: "button small", dataset: { act: "approve" }, onclick: () => approve(id) });
  const holdBtn = el("button", { type: "button", class: "button small", dataset: { act: "hold" }, onclick: () => organMove(id, "hold") });
  return el(
    "tr",
    { role: "row", dataset: { organId: id, detailId } },
    el("td", { role: "cell", class: "mono", dataset: { col: "id" } }, id),
    el("td", { role: "cell", class: "mono", dataset: { col: "template" } }),
    el("td", { role: "cell", dataset: { col: "state" } }),
    el("td", { role: "cell", dataset: { col: "progress" } }, stageBar(organ.state, { compact: true, label: id })),
    el("td", { role: "cell", dataset: { col: "updated" } }),
    el("td", { role: "cell", dataset: { col: "actions" } }, el("div", { class: "actions" }, statusBtn, approveBtn, holdBtn, cancelBtn, rebuildBtn)),
  );
}

function updateOrganRow(row, organ) {
  const cell = (col) => row.querySelector(`td[data-col="${col}"]`);
  const labels = { id: "col.id", template: "col.template", state: "col.state", progress: "col.progress", updated: "col.updated", actions: "col.actions" };
  for (const [col, key] of Object.entries(labels)) cell(col).dataset.label = t(key);
  row.dataset.state = organ.state;
  cell("template").textContent = organ.template_id ?? "—";
  cell("state").replaceChildren(stateBadge(organ.state));
  const bar = cell("progress").querySelector(".stages");
  if (organ.reached !== undefined) bar.dataset.reached = String(organ.reached);
  setStage(bar, organ.state);
  bar.setAttribute("aria-label", `${t("col.progress")}: ${organ.id}`);
  const time = formatTime(organ.updated_at);
  cell("updated").replaceChildren(el("time", { datetime: time.iso || null }, time.text));
  const open = openStatus.has(organ.id);
  const statusBtn = row.querySelector('[data-act="status"]');
  statusBtn.textContent = open ? t("act.hide") : t("act.status");
  statusBtn.setAttribute("aria-expanded", String(open));
  const cancelBtn = row.querySelector('[data-act="cancel"]');
  cancelBtn.textContent = t("act.cancel");
  cancelBtn.disabled = !legal("organs", organ.state, "cancel");
  row.querySelector('[data-act="rebuild"]').textContent = t("act.rebuild");
  for (const act of ["approve", "hold"]) {  // shown only where the lifecycle table allows them
    const btn = row.querySelector(`[data-act="${act}"]`);
    btn.textContent = t(`act.organ_${act}`);
    btn.disabled = !legal("organs", organ.state, act);
  }
}

async function organMove(id, act) {
  try {
    const res = await api("POST", `/organs/${encodeURIComponent(id)}/${act}`);
    setOrganState(id, res?.state || organs.get(id)?.state);
    notify(t(`done.organ_${act}`, { id }));
  } catch (err) {
    showError(err);
  }
}

async function toggleStatus(id) {
  const body = $("#organs-body");
  const existing = body.querySelector(`tr[data-detail-for="${CSS.escape(id)}"]`);
  if (openStatus.has(id)) {
    openStatus.delete(id);
    existing?.remove();
    renderOrgans();
    return;
  }
  openStatus.add(id);
  const row = body.querySelector(`tr[data-organ-id="${CSS.escape(id)}"]`);
  const detail = el("tr", { role: "row", class: "detail-row", dataset: { detailFor: id } }, el("td", { role: "cell", colspan: "6", id: row.dataset.detailId }, el("p", { class: "muted" }, "…")));
  row.after(detail);
  renderOrgans();
  await loadStatus(id);
}

async function loadStatus(id) {
  if (!openStatus.has(id)) return;
  try {
    const status = await api("GET", `/organs/${encodeURIComponent(id)}/status`);
    const evidence = await loadEvidence(status);
    const td = $("#organs-body").querySelector(`tr[data-detail-for="${CSS.escape(id)}"] > td`);
    if (!td) return;
    // Only the status part is redrawn: the try-it box below it keeps its input, its answer and its focus.
    const old = td.querySelector(".status-detail");
    if (old) old.replaceWith(renderStatus(status, evidence));
    else td.replaceChildren(renderStatus(status, evidence));
    const box = tryBox(status, refreshStatus);
    if (box.parentNode !== td) td.append(box);
  } catch (err) {
    showError(err);
  }
}
const statusRefreshers = new Map();
function refreshStatus(id) {
  if (!openStatus.has(id)) return;
  if (!statusRefreshers.has(id)) statusRefreshers.set(id, throttle(() => loadStatus(id), 300));
  statusRefreshers.get(id)();
}

/** The organ's analysis and each of its cell records', read together. */
async function loadEvidence(status) {
  const cells = listOf(status.cells, "items").filter((c) => c.record_id);
  const [organ, ...records] = await Promise.all([loadAnalysis("organ", status.id), ...cells.map((c) => loadAnalysis("cell", c.record_id))]);
  return { organ, cells: cells.map((c, i) => ({ cell: c, analysis: records[i] })) };
}

function renderEvidence(status, evidence) {
  const cells = evidence.cells.map(({ cell, analysis }) =>
    el("li", { dataset: { evidenceFor: cell.record_id } }, el("code", {}, cell.record_id), el("span", { class: "muted mono" }, cell.id), evidenceView(analysis, { label: cell.record_id, compact: true })));
  return el(
    "div",
    { class: "status-evidence", dataset: { evidenceFor: status.id } },
    el("h4", {}, t("status.evidence")),
    evidenceView(evidence.organ, { label: status.id, waitingFor: status.waiting_for }),
    cells.length ? el("ul", { class: "evidence-cells" }, cells) : null,
  );
}

/** Approve; when the evidence says no (403 policy_denied: a failing verdict; 409 held: no verdict yet), the
 * server's reason is shown and the approval can be forced with a reason of the user's, which is audited. */
async function approve(id) {
  const path = `/organs/${encodeURIComponent(id)}/approve`;
  let res;
  try {
    res = await api("POST", path, {});
  } catch (err) {
    if (err.code !== "policy_denied" && err.code !== "held") return showError(err);
    const reason = await askReason(t("confirm.force", { id, why: err.reason }));
    if (!reason) return;
    try {
      res = await api("POST", path, { force: true, reason });
    } catch (again) {
      return showError(again);
    }
  }
  setOrganState(id, res?.state || organs.get(id)?.state);
  notify(t("done.organ_approve", { id }));
}

function renderStatus(status, evidence) {
  const cellList = organCells(listOf(status.cells, "items"));
  const metrics = renderMetrics(status.metrics);
  return el(
    "div",
    { class: "status-detail", dataset: { statusFor: status.id } },
    el("div", {}, el("h4", {}, t("status.timeline")), renderTimeline(status)),
    renderEvidence(status, evidence),
    el("div", {}, el("h4", {}, t("status.cells")), cellList),
    metrics ? el("div", {}, el("h4", {}, t("status.metrics")), metrics) : null,
    el("div", { class: "status-runs" }, el("h4", {}, t("status.runs")), renderRunFigures(status.metrics?.runs)),
  );
}

async function cancelBuild(id) {
  if (!(await confirmAction(t("confirm.cancel", { id })))) return;
  try {
    const res = await api("DELETE", `/organs/${encodeURIComponent(id)}/build`);
    setOrganState(id, res?.state || "failed");
    notify(t("done.cancel", { id }));
  } catch (err) {
    showError(err);
  }
}

async function rebuild(id) {
  if (!(await confirmAction(t("confirm.rebuild", { id })))) return;
  try {
    const res = await api("POST", `/organs/${encodeURIComponent(id)}/rebuild`);
    const organ = organs.get(id);
    if (organ) organ.reached = 0;
    setOrganState(res?.organ_id || id, res?.state || "draft");
    notify(t("done.rebuild", { id }));
  } catch (err) {
    showError(err);
  }
}

function setOrganState(id, state, at) {
  const organ = organs.get(id);
  if (!organ) return refreshOrgans();
  organ.state = state;
  if (STAGES.includes(state)) organ.reached = STAGES.indexOf(state);
  if (at) organ.updated_at = at;
  renderOrgans();
  refreshStatus(id);
}

// ---- gates and safe mode -------------------------------------------------------

function normaliseCaps(data) {
  const source = data?.capabilities ?? data?.gates ?? data;
  if (Array.isArray(source)) return source.map((c) => ({ name: c.name ?? c.id, state: c.state, locked: c.locked }));
  return Object.entries(source || {}).map(([name, v]) =>
    typeof v === "object" && v !== null ? { name, state: v.state, locked: v.locked } : { name, state: v },
  );
}

async function loadCaps() {
  try {
    const caps = normaliseCaps(await api("GET", "/api/neira/capabilities"));
    gates = Object.fromEntries(caps.map((c) => [c.name, c.state]));
    $("#caps").replaceChildren(
      ...caps.map((c) =>
        el("li", { dataset: { capability: c.name } }, el("code", {}, c.name), stateBadge(c.state), c.locked && c.state !== "locked" ? stateBadge("locked") : null),
      ),
    );
    $("#caps-empty").hidden = caps.length > 0;
  } catch (err) {
    showError(err);
  }
}

async function loadSafeMode() {
  try {
    const data = await api("GET", "/api/neira/safe-mode");
    const on = Boolean(data?.enabled ?? data?.safe_mode);
    $("#safe-mode").hidden = !on;
    $("#safe-mode-reason").textContent = on && data?.reason ? t("panel.safe.reason", { reason: data.reason }) : "";
  } catch (err) {
    showError(err);
  }
}

// ---- live events -----------------------------------------------------------------

const refreshCaps = throttle(() => loadCaps().then(loadOrgans), 300);
const refreshSafe = throttle(loadSafeMode, 300);

/** Route one event frame {seq, at, type, subject, data} to what it changes. */
function onEvent(frame) {
  activityEvent(frame);
  const type = String(frame?.type ?? "");
  const data = frame?.data || {};
  // Subjects look like "organ:<id>" or "cell:<id>"; the data usually names the id too.
  const subject = data.id ?? data.organ_id ?? String(frame?.subject ?? "").replace(/^\w+:/, "");
  if (type.startsWith("organ")) {
    const state = data.to ?? data.state;
    if (subject && organs.has(subject) && state) setOrganState(subject, state, frame.at);
    else refreshOrgans();
    if (subject) refreshStatus(subject);
  } else if (type.startsWith("factory") || type.startsWith("cell")) {
    refreshCells();
  } else if (type.includes("capabilit") || type.includes("gate")) {
    refreshCaps();
  } else if (type.includes("safe")) {
    refreshSafe();
  } else {
    refreshOrgans();
    refreshCells();
  }
}

function setLive(status) {
  const live = $("#live");
  live.dataset.status = status;
  live.textContent = status === "open" ? t("live.on") : status === "connecting" ? t("live.connecting") : t("live.off");
}

// ---- start ---------------------------------------------------------------------------

function loadAll() {
  return Promise.all([loadCaps().then(loadOrgans), loadCells(), loadSafeMode(), loadActivity(), loadTemplates()]);
}

async function start() {
  await loadLifecycle();
  await loadAll();
  const wanted = new URLSearchParams(location.hash.slice(1)).get("organ");
  if (wanted && organs.has(wanted) && !openStatus.has(wanted)) {
    await toggleStatus(wanted);
    $("#organs-body").querySelector(`tr[data-organ-id="${CSS.escape(wanted)}"]`)?.scrollIntoView({ block: "center" });
  }
  if (events) return;
  events = openStream("/api/neira/events/stream", {
    onFrame: onEvent,
    onStatus: (status) => {
      setLive(status);
      // Whatever changed before the stream was (re)opened is picked up by one full reload.
      if (status === "open") loadAll();
      if (status === "closed") events = null;
    },
    onRefused: showError,
  });
}

$("#refresh").addEventListener("click", loadAll);
document.addEventListener("langchange", () => {
  renderOrgans();
  loadCells();
  loadCaps().then(loadOrgans);
  loadSafeMode();
  for (const id of openStatus) loadStatus(id);
  setLive($("#live").dataset.status);
});

initShell({ onReady: start });
