// An organ's cells in its status detail, each linked to its cell record (GET /factory/cells/{id}): the
// record opens in place with its template, backend, state and history, and stays open across redraws.

import { api } from "./api.js";
import { stateLabel, t } from "./i18n.js";
import { el, formatTime, showError } from "./shell.js";
import { stateBadge } from "./stages.js";

const open = new Set(); // record ids whose record is shown
const known = new Map(); // record id → record as last read

function renderRecord(rec) {
  const history = (rec.history || []).map((h) => {
    const time = formatTime(h.at);
    const move = `${h.from ? stateLabel(h.from) : "∅"} → ${stateLabel(h.to)}`;
    return el("li", {}, el("time", { datetime: time.iso || null }, time.text), ` ${move}`, h.actor ? ` · ${h.actor}` : "", h.reason ? ` · ${h.reason}` : "");
  });
  return [
    el("dl", { class: "metrics-list" },
      el("dt", {}, t("record.template")), el("dd", {}, `${rec.template_id ?? "—"} @ ${rec.version ?? "—"}`),
      el("dt", {}, t("record.backend")), el("dd", {}, rec.backend ?? "—"),
      el("dt", {}, t("col.state")), el("dd", {}, stateLabel(rec.state))),
    el("h4", {}, t("record.history")),
    history.length ? el("ol", {}, history) : el("p", { class: "muted" }, "—"),
  ];
}

async function loadRecord(id, box) {
  try {
    const rec = await api("GET", `/factory/cells/${encodeURIComponent(id)}`);
    known.set(id, rec);
    if (box.isConnected) box.replaceChildren(...renderRecord(rec));
  } catch (err) {
    showError(err);
  }
}

function cellItem(cell) {
  const recordId = cell.record_id;
  const head = el("div", { class: "organ-cell-head" }, el("code", {}, cell.id ?? String(cell)), cell.state ? stateBadge(cell.state) : null);
  if (!recordId) return el("li", {}, head);
  const boxId = `record-${String(recordId).replace(/[^\w-]/g, "_")}-${Math.random().toString(36).slice(2, 8)}`;
  const box = el("div", { class: "cell-record", id: boxId, hidden: !open.has(recordId), dataset: { recordFor: recordId } });
  const toggle = el("button", {
    type: "button", class: "link-button mono", "aria-expanded": String(open.has(recordId)), "aria-controls": boxId,
    dataset: { record: recordId },
    onclick: () => {
      const show = !open.has(recordId);
      if (show) open.add(recordId);
      else open.delete(recordId);
      toggle.setAttribute("aria-expanded", String(show));
      box.hidden = !show;
      if (show) loadRecord(recordId, box);
    },
  }, t("status.record", { id: recordId }));
  head.append(toggle);
  if (open.has(recordId)) {
    if (known.has(recordId)) box.replaceChildren(...renderRecord(known.get(recordId)));
    loadRecord(recordId, box); // fresh state and history on every redraw of the status
  }
  return el("li", { dataset: { cellRecord: recordId } }, head, box);
}

/** The list of an organ's cells ({id, record_id, state}), each with a link to its cell record. */
export function organCells(cells) {
  return cells.length ? el("ul", { class: "organ-cells" }, cells.map(cellItem)) : el("p", { class: "muted" }, "—");
}
