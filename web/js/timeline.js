// A small timeline of an organ's stage timings, read from its status `metrics`.

import { stateLabel, t } from "./i18n.js";
import { el } from "./shell.js";

const STAGE_NAMES = ["draft", "canary", "experimental", "stable", "failed"];
const MAP_KEYS = ["stage_durations_ms", "stage_ms", "stages_ms", "durations_ms", "timings_ms", "stage_timings", "timings", "durations", "stages"];
const LIST_KEYS = ["timeline", "stages", "transitions", "history", "stage_history"];

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : typeof v === "object" && v ? num(v.ms ?? v.duration_ms ?? v.elapsed_ms) : null);
const ms = (v) => {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d.getTime();
};

/** Stage durations [{stage, ms}] from whichever shape the status carries them in. */
export function stageTimings(status) {
  const metrics = status?.metrics || {};
  for (const key of MAP_KEYS) {
    const map = metrics[key];
    if (map && typeof map === "object" && !Array.isArray(map)) {
      const rows = Object.entries(map).map(([stage, v]) => ({ stage, ms: num(v) })).filter((r) => r.ms !== null);
      if (rows.length) return rows;
    }
  }
  for (const source of [metrics, status]) {
    for (const key of LIST_KEYS) {
      const list = source?.[key];
      if (Array.isArray(list) && list.length && typeof list[0] === "object") return fromList(list);
    }
  }
  const flat = [];
  for (const stage of STAGE_NAMES) {
    const v = metrics[`${stage}_ms`] ?? metrics[`${stage}_duration_ms`];
    if (typeof v === "number") flat.push({ stage, ms: v });
  }
  return flat;
}

function fromList(list) {
  const rows = [];
  for (let i = 0; i < list.length; i += 1) {
    const item = list[i];
    const stage = item.stage ?? item.state ?? item.to ?? item.name;
    let d = num(item.duration_ms ?? item.ms ?? item.elapsed_ms);
    // With only timestamps, a stage lasts from the move into it to the next move.
    if (d === null && i > 0) {
      const prev = ms(list[i - 1].at ?? list[i - 1].ts ?? list[i - 1].started_at);
      const here = ms(item.at ?? item.ts ?? item.started_at);
      if (prev !== null && here !== null) d = here - prev;
    }
    if (stage && d !== null) rows.push({ stage, ms: Math.max(d, 0) });
  }
  return rows;
}

const fmt = (v) => (v >= 10000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`);

/** The timeline: proportional segments plus a readable legend (the legend is what screen readers get). */
export function renderTimeline(status) {
  const rows = stageTimings(status);
  if (!rows.length) return el("p", { class: "muted" }, t("status.notimings"));
  const total = rows.reduce((sum, r) => sum + r.ms, 0) || 1;
  return el(
    "div",
    { class: "timeline-box", dataset: { stages: rows.map((r) => r.stage).join(",") } },
    el(
      "div",
      { class: "timeline", "aria-hidden": "true" },
      rows.map((r) => el("span", { class: "timeline-seg", style: `flex-grow:${Math.max(r.ms / total, 0.02)}`, title: `${stateLabel(r.stage)}: ${fmt(r.ms)}` })),
    ),
    el("ol", { class: "timeline-legend" }, rows.map((r) => el("li", {}, `${stateLabel(r.stage)} — ${fmt(r.ms)}`))),
  );
}
