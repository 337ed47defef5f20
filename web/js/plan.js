// Rendering of a command reply's pieces: the plan with + ~ - = lines, policy violations, suggestions.

import { t } from "./i18n.js";
import { el } from "./shell.js";

const MARKERS = { create: "+", update: "~", delete: "-", reuse: "=", "no-op": "=" };
const LINE_CLASS = { "+": "line-add", "~": "line-change", "-": "line-remove", "=": "line-same" };

/** The class of one plan text line, by its leading marker. */
export function lineClass(line) {
  const trimmed = line.trimStart();
  if (trimmed.startsWith("-/+") || trimmed.startsWith("+/-")) return "line-change";
  return LINE_CLASS[trimmed[0]] || "line-plain";
}

/** Text lines for a plan that came without `text`, built from its changes. */
function fallbackLines(plan) {
  const lines = (plan.changes || []).map((c) => {
    const move = c.before && c.after ? ` (${describe(c.before)} → ${describe(c.after)})` : "";
    return `${MARKERS[c.action] || "~"} ${c.kind} ${c.id}${move}`;
  });
  if (plan.summary) lines.push(typeof plan.summary === "string" ? plan.summary : JSON.stringify(plan.summary));
  return lines;
}

function describe(value) {
  if (value === null || value === undefined) return "∅";
  if (typeof value !== "object") return String(value);
  return value.id || value.template_id || value.version || value.state || JSON.stringify(value);
}

/** The plan block: coloured lines plus a foldable list of every change with its reason. */
export function renderPlan(plan) {
  const lines = plan.text ? String(plan.text).replace(/\s+$/, "").split("\n") : fallbackLines(plan);
  const pre = el("pre", { class: "plan-text", tabindex: "0", "aria-label": t("plan.label") });
  lines.forEach((line, i) => {
    pre.append(el("span", { class: `plan-line ${lineClass(line)}` }, line));
    if (i < lines.length - 1) pre.append("\n");
  });
  const block = el("section", { class: "plan", dataset: { planId: plan.id ?? "" } }, el("h4", { class: "plan-title" }, t("plan.label")), pre);
  const changes = plan.changes || [];
  if (changes.length) {
    const list = el("ul", { class: "plan-changes" });
    for (const c of changes) {
      const marker = MARKERS[c.action] || "~";
      const move = c.before !== undefined || c.after !== undefined ? ` ${describe(c.before)} → ${describe(c.after)}` : "";
      list.append(
        el(
          "li",
          { class: lineClass(marker) },
          el("code", {}, `${marker} ${c.action} ${c.kind} ${c.id}`),
          move,
          c.reason ? el("span", { class: "reason" }, ` — ${c.reason}`) : null,
        ),
      );
    }
    block.append(el("details", { class: "plan-details" }, el("summary", {}, t("plan.changes")), list));
  }
  return block;
}

/** A violation may be a string or a policy decision {decision_id, rule, action, reason}. */
function violationText(v) {
  if (typeof v === "string") return v;
  const head = v.rule || v.capability || v.code || v.decision_id || "";
  const reason = v.reason || v.message || "";
  return head && reason ? `${head}: ${reason}` : head || reason || JSON.stringify(v);
}

/** The list of policy violations, or null when there are none. */
export function renderViolations(violations) {
  if (!violations?.length) return null;
  return el(
    "section",
    { class: "violations", role: "note" },
    el("h4", {}, t("plan.violations")),
    el("ul", {}, violations.map((v) => el("li", {}, violationText(v)))),
  );
}

/** A suggestion may be a phrase or an object naming one. */
export function suggestionText(s) {
  if (typeof s === "string") return s;
  return s?.text || s?.phrase || s?.suggestion || s?.value || "";
}

/** Buttons for suggested phrases; a click hands the phrase to onPick. */
export function renderSuggestions(suggestions, onPick, heading = t("reply.suggestions")) {
  const items = (suggestions || []).map(suggestionText).filter(Boolean);
  if (!items.length) return null;
  return el(
    "div",
    { class: "suggestions" },
    el("p", { class: "suggestions-title" }, heading),
    el(
      "ul",
      { class: "chips" },
      items.map((text) => el("li", {}, el("button", { type: "button", class: "chip", onclick: () => onPick(text) }, text))),
    ),
  );
}
