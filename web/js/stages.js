// The stage progress bar draft → canary → experimental → stable, with a clear failed state.

import { stateLabel } from "./i18n.js";
import { el } from "./shell.js";

export const STAGES = ["draft", "canary", "experimental", "stable"];
export const TERMINAL = new Set(["stable", "failed", "disabled", "rolled_back", "deprecated"]);

/** A progress bar for one organ; update it with setStage(bar, state). */
export function stageBar(state, { compact = false, label = "" } = {}) {
  const bar = el("div", {
    class: compact ? "stages stages-compact" : "stages",
    role: "progressbar",
    "aria-valuemin": "0",
    "aria-valuemax": String(STAGES.length - 1),
    "aria-label": label || null,
  });
  const list = el("ol", { class: "stage-steps", "aria-hidden": "true" });
  for (const stage of STAGES) {
    list.append(el("li", { class: "stage-step", dataset: { stage } }, el("span", { class: "stage-name" })));
  }
  bar.append(list);
  setStage(bar, state);
  return bar;
}

/** Move the bar to `state`; a failure keeps the stages reached before it and marks the next one failed. */
export function setStage(bar, state) {
  const known = STAGES.indexOf(state);
  if (known >= 0) bar.dataset.reached = String(known);
  const reached = Number(bar.dataset.reached ?? -1);
  const failed = state === "failed";
  bar.dataset.state = state || "";
  bar.classList.toggle("is-failed", failed);
  bar.classList.toggle("is-done", state === "stable");
  bar.setAttribute("aria-valuenow", String(Math.max(reached, 0)));
  bar.setAttribute("aria-valuetext", stateLabel(state));
  bar.querySelectorAll(".stage-step").forEach((step, i) => {
    step.classList.toggle("done", i <= reached && !(failed && i > reached));
    step.classList.toggle("current", !failed && i === reached);
    step.classList.toggle("failed", failed && i === reached + 1);
    step.querySelector(".stage-name").textContent = failed && i === reached + 1 ? stateLabel("failed") : stateLabel(STAGES[i]);
  });
  if (failed && reached >= STAGES.length - 1) bar.querySelector(".stage-step:last-child").classList.add("failed");
}

/** A coloured badge with the localised state name. */
export function stateBadge(state) {
  return el("span", { class: `badge badge-${String(state || "unknown").replace(/[^a-z_]/g, "")}`, dataset: { state } }, stateLabel(state || "unknown"));
}
