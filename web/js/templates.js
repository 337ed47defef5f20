// The panel's organ templates: the catalog's latest version of each (GET /organs/templates, page by page).

import { apiList } from "./api.js";
import { currentLang, t } from "./i18n.js";
import { el, showError } from "./shell.js";

const $ = (sel) => document.querySelector(sel);
let templates = [];
let more = false;

/** Load every organ template (following the list's `Link` pages) and draw the table. */
export async function loadTemplates() {
  try {
    ({ items: templates, more } = await apiList("/organs/templates?limit=100"));
  } catch (err) {
    showError(err);
  }
  renderTemplates();
}

function renderTemplates() {
  $("#templates-body").replaceChildren(
    ...templates.map((tpl) => {
      const names = tpl.aliases?.[currentLang()] ?? [];
      return el(
        "tr",
        { role: "row", dataset: { templateId: tpl.id } },
        el("td", { role: "cell", class: "mono", dataset: { label: t("col.id") } }, tpl.id),
        el("td", { role: "cell", class: "mono", dataset: { label: t("col.version") } }, tpl.version,
          tpl.versions?.length > 1 ? el("span", { class: "muted" }, ` (${tpl.versions.join(", ")})`) : null),
        el("td", { role: "cell", dataset: { label: t("col.cells") } }, el("ul", { class: "template-cells" }, (tpl.cells || []).map((c) => el("li", {}, el("code", {}, c))))),
        el("td", { role: "cell", dataset: { label: t("col.description") } }, tpl.description || "—",
          names.length ? el("span", { class: "muted" }, ` · ${names.join(", ")}`) : null),
      );
    }),
  );
  $("#templates-table").hidden = templates.length === 0;
  $("#templates-empty").hidden = templates.length > 0;
  $("#templates-more").hidden = !more;
}

document.addEventListener("langchange", renderTemplates);
