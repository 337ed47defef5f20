// A small timeline of an organ's stage timings, read from its status `metrics`.

import { stateLabel, t } from "./i18n.js";
import { el, formatTime, toMs } from "./shell.js";

const MAP_KEYS = ["stage_durations_ms", "stage_ms", "durations_ms", "timings_ms"];
const END_STATES = new Set(["stable", "failed", "disabled", "rolled_back", "deprecated"]);

/**
 * Stage rows [{stage, ms, ongoing}] and the time the last stage was reached, from the status.
 * The builder reports `metrics.stage_times: {state: entered_at}`; a stage lasts until the next one starts,
 * and the stage in progress lasts until now. Plain duration maps ({stage: ms}) are read as they are.
 */
export function stageTimings(status, now = Date.now()) {
  const metrics = status?.metrics || {};
  const times = metrics.stage_times;
  if (times && typeof times === "object") {
    const entries = Object.entries(times)
      .map(([stage, at]) => ({ stage, at: toMs(at) }))
      .filter((e) => Number.isFinite(e.at))
      .sort((a, b) => a.at - b.at);
    if (!entries.length) return { rows: [], end: null };
    const rows = [];
    entries.forEach((e, i) => {
      const next = entries[i + 1];
      if (next) rows.push({ stage: e.stage, ms: next.at - e.at, ongoing: false });
      else if (!END_STATES.has(e.stage)) rows.push({ stage: e.stage, ms: Math.max(now - e.at, 0), ongoing: true });
    });
    const last = entries.at(-1);
    const end = END_STATES.has(last.stage) ? { stage: last.stage, ms: last.at - entries[0].at } : null;
    return { rows, end };
  }
  for (const key of MAP_KEYS) {
    const map = metrics[key];
    if (map && typeof map === "object") {
      const rows = Object.entries(map)
        .filter(([, v]) => typeof v === "number")
        .map(([stage, ms]) => ({ stage, ms, ongoing: false }));
      if (rows.length) return { rows, end: null };
    }
  }
  return { rows: [], end: null };
}

/** A duration for people: milliseconds below ten seconds, then seconds. */
export const formatMs = (v) => (v >= 10000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);

/** The timeline: proportional segments plus a readable legend (the legend is what screen readers get). */
export function renderTimeline(status) {
  const { rows, end } = stageTimings(status);
  if (!rows.length) return el("p", { class: "muted" }, t("status.notimings"));
  const total = rows.reduce((sum, r) => sum + r.ms, 0) || 1;
  const legend = rows.map((r) => el("li", {}, `${stateLabel(r.stage)} — ${formatMs(r.ms)}${r.ongoing ? "…" : ""}`));
  if (end) legend.push(el("li", { class: `timeline-end timeline-${end.stage}` }, `${stateLabel(end.stage)} — ${t("status.after", { time: formatMs(end.ms) })}`));
  return el(
    "div",
    { class: "timeline-box", dataset: { stages: rows.map((r) => r.stage).join(",") } },
    el(
      "div",
      { class: "timeline", "aria-hidden": "true" },
      rows.map((r) =>
        el("span", {
          class: `timeline-seg seg-${r.stage}${r.ongoing ? " ongoing" : ""}`,
          style: `flex-grow:${Math.max(r.ms / total, 0.02)}`,
          title: `${stateLabel(r.stage)}: ${formatMs(r.ms)}`,
        }),
      ),
    ),
    el("ol", { class: "timeline-legend" }, legend),
  );
}

/** The status metrics worth reading, formatted: times as local times, durations in ms, states by name. */
export function renderMetrics(metrics) {
  const rows = [];
  for (const [key, value] of Object.entries(metrics || {})) {
    if (value === null || value === undefined || typeof value === "object") continue;
    let text = String(value);
    if (key.endsWith("_at")) text = formatTime(value).text;
    else if (key.endsWith("_ms") && typeof value === "number") text = formatMs(value);
    else if (key.endsWith("stage") || key === "state") text = stateLabel(value);
    rows.push([el("dt", {}, key), el("dd", {}, text)]);
  }
  return rows.length ? el("dl", { class: "metrics-list" }, rows) : null;
}
