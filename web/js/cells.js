// The cell records table of the panel: state and approve / disable / rollback, with confirmation.

import { api, apiList } from "./api.js";
import { confirmAction } from "./confirm.js";
import { legal } from "./lifecycle.js";
import { stateLabel, t } from "./i18n.js";
import { el, formatTime, listOf, notify, showError, throttle } from "./shell.js";
import { stateBadge } from "./stages.js";

const $ = (sel) => document.querySelector(sel);

const CELL_ACTIONS = [
  { act: "approve", when: (s) => legal("cells", s, "approve"), confirm: null },
  { act: "disable", when: (s) => legal("cells", s, "disable"), confirm: "confirm.disable" },
  { act: "rollback", when: (s) => legal("cells", s, "rollback"), confirm: "confirm.rollback" },
];

/** Load the cell records and draw their table. */
export async function loadCells() {
  try {
    renderCells(listOf(await apiList("/factory/cells?limit=1000"), "records", "cells", "items"));
  } catch (err) {
    showError(err);
  }
}
/** Reload soon, at most a few times a second (events can come in bursts). */
export const refreshCells = throttle(loadCells, 300);

function cellTemplate(rec) {
  const tpl = rec.template || rec.tpl || rec.spec;
  const id = rec.template_id ?? tpl?.id;
  const version = rec.version ?? rec.template_version ?? tpl?.version;
  return [id, version].filter(Boolean).join(" @ ") || "—";
}

function cellUpdated(rec) {
  return rec.updated_at ?? rec.history?.at?.(-1)?.at ?? rec.created_at;
}

function renderCells(records) {
  const body = $("#cells-body");
  const focused = document.activeElement?.closest?.("#cells-body button");
  const focusKey = focused ? `${focused.closest("tr").dataset.cellId}:${focused.dataset.act}` : null;
  body.replaceChildren(
    ...records.map((rec) => {
      const time = formatTime(cellUpdated(rec));
      return el(
        "tr",
        { role: "row", dataset: { cellId: rec.id, state: rec.state } },
        el("td", { role: "cell", class: "mono", dataset: { label: t("col.id") } }, rec.id),
        el("td", { role: "cell", class: "mono", dataset: { label: t("col.template") } }, cellTemplate(rec)),
        el("td", { role: "cell", dataset: { label: t("col.state") } }, stateBadge(rec.state)),
        el("td", { role: "cell", dataset: { label: t("col.updated") } }, el("time", { datetime: time.iso || null }, time.text)),
        el(
          "td",
          { role: "cell", dataset: { label: t("col.actions") } },
          el(
            "div",
            { class: "actions" },
            CELL_ACTIONS.map(({ act, when, confirm }) =>
              el(
                "button",
                { type: "button", class: `button small${confirm ? " danger" : ""}`, disabled: !when(rec.state), dataset: { act }, onclick: () => cellAction(rec.id, act, confirm) },
                t(`act.${act}`),
              ),
            ),
          ),
        ),
      );
    }),
  );
  if (focusKey) {
    const [cellId, act] = focusKey.split(":");
    body.querySelector(`tr[data-cell-id="${CSS.escape(cellId)}"] button[data-act="${act}"]`)?.focus();
  }
  $("#cells-empty").hidden = records.length > 0;
  $("#cells-table").hidden = records.length === 0;
}

async function cellAction(id, act, confirmKey) {
  if (confirmKey && !(await confirmAction(t(confirmKey, { id })))) return;
  try {
    const res = await api("POST", `/factory/cells/${encodeURIComponent(id)}/${act}`);
    notify(t(`done.${act}`, { id, state: stateLabel(res?.state) }));
  } catch (err) {
    showError(err);
  }
  loadCells();
}
