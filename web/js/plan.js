// Reading and rendering a command reply: the plan with + ~ - = lines, violations, suggestions, organ ids.

import { t } from "./i18n.js";
import { el } from "./shell.js";

const LINE_CLASS = { "+": "line-add", "~": "line-change", "-": "line-remove", "=": "line-same", "!": "line-risk" };
const ACTION_CLASS = { create: "line-add", update: "line-change", delete: "line-remove", reuse: "line-same", "no-op": "line-same" };

/** The class of one line of the server's plan text, by the marker the server put first. */
export function lineClass(line) {
  return LINE_CLASS[line.trimStart()[0]] || "line-plain";
}

function describe(value) {
  if (value === null || value === undefined) return "∅";
  if (typeof value !== "object") return String(value);
  return value.id || value.template_id || value.version || value.state || JSON.stringify(value);
}

/** The plan block: coloured lines plus a foldable list of every change with its reason. */
export function renderPlan(plan) {
  const lines = String(plan.text || "").replace(/\s+$/, "").split("\n");
  const pre = el("pre", { class: "plan-text", tabindex: "0", "aria-label": t("plan.label") });
  // The server writes one `!` line per entry of plan.risks, in order: the n-th `!` line has the n-th severity.
  const risks = plan.risks || [];
  let risk = 0;
  // One block per line, so a long line wraps with a hanging indent under its marker.
  for (const line of lines) {
    let cls = lineClass(line);
    if (cls === "line-risk") cls += ` risk-${risks[risk++]?.severity === "warning" ? "warning" : "error"}`;
    pre.append(el("span", { class: `plan-line ${cls}` }, line || " "));
  }
  const block = el("section", { class: "plan", dataset: { planId: plan.id ?? "" } }, el("h4", { class: "plan-title" }, t("plan.label")), pre);
  const changes = plan.changes || [];
  if (changes.length) {
    const list = el("ul", { class: "plan-changes" });
    for (const c of changes) {
      const move = c.before !== undefined || c.after !== undefined ? ` ${describe(c.before)} → ${describe(c.after)}` : "";
      const name = c.record_id ? `${c.record_id} (${c.id})` : c.id;
      list.append(
        el(
          "li",
          { class: ACTION_CLASS[c.action] || "line-plain" },
          el("code", {}, `${c.action} ${c.kind} ${name}`),
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

/**
 * Whole phrases to offer for a reply that was not understood: the corrected text when the parser gives one,
 * else the typed text with the unknown word replaced by each suggestion (or candidate), else the words alone.
 */
export function suggestedPhrases(res, typed = "") {
  const err = res?.error || {};
  const corrected = typeof err.corrected === "string" && err.corrected ? err.corrected : "";
  // The corrected text already carries the suggestions; ambiguous candidates still need one phrase each.
  const words = [...(corrected ? [] : err.suggestions || res?.suggestions || []), ...(err.candidates || [])]
    .map((s) => (typeof s === "string" ? s : s?.text || s?.phrase || ""))
    .filter(Boolean);
  const phrases = [];
  if (corrected) phrases.push(corrected);
  for (const word of words) {
    if (word.includes(" ")) phrases.push(word);
    else if (err.word && typed.includes(err.word)) phrases.push(typed.replace(err.word, word));
    else if (Number.isInteger(err.position) && typed) phrases.push(replaceWordAt(typed, err.position, word));
    else phrases.push(word);
  }
  return [...new Set(phrases)];
}

function replaceWordAt(text, position, word) {
  const start = text.slice(0, position).search(/\S*$/);
  const rest = text.slice(start);
  const len = rest.search(/\s|$/);
  return text.slice(0, start) + word + rest.slice(len);
}

/** Organ ids an apply started: every `organ_id`, and the ids in any `organs` list. */
export function organIdsFrom(value, found = new Set()) {
  if (Array.isArray(value)) {
    value.forEach((v) => organIdsFrom(v, found));
  } else if (value && typeof value === "object") {
    for (const [key, v] of Object.entries(value)) {
      if (key === "organ_id" && typeof v === "string") found.add(v);
      else if (key === "organ_ids" && Array.isArray(v)) v.forEach((id) => typeof id === "string" && found.add(id));
      else if (key === "organs" && Array.isArray(v)) {
        for (const o of v) {
          if (typeof o === "string") found.add(o);
          else if (o && typeof (o.organ_id ?? o.id) === "string") found.add(o.organ_id ?? o.id);
        }
      } else if (key !== "plan" && key !== "spec") organIdsFrom(v, found);
    }
  }
  return [...found];
}
