// The evidence behind a promotion (contract §7): the canary verdict of an organ or a cell record, its runs,
// error rate and p99 against the stable baseline, why it waits, and a small chart of p99 over the stint.

import { api } from "./api.js";
import { t } from "./i18n.js";
import { el } from "./shell.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 240;
const H = 56;
const PAD = 4;

/** GET the analysis of a cell record (`kind` "cell") or an organ; null when it cannot be read. */
export async function loadAnalysis(kind, id) {
  const path = kind === "cell" ? `/factory/cells/${encodeURIComponent(id)}/analysis` : `/organs/${encodeURIComponent(id)}/analysis`;
  try {
    return await api("GET", path);
  } catch {
    return null; // the evidence is an addition to the status; its absence must not hide the rest
  }
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

/** A duration as people read it: two decimals under 1 ms, one under 10 ms, whole ms above. */
const ms = (v) => (v === null || v === undefined ? "—" : `${Number(v).toFixed(v < 1 ? 2 : v < 10 ? 1 : 0)} ms`);

/** p99 over the stint (solid) against the baseline's p99 (dashed), as an accessible SVG; null without points. */
export function trendChart(trend, label) {
  const points = (trend || []).filter((p) => typeof p.p99_ms === "number");
  if (!points.length) return null;
  const top = Math.max(0.05, ...points.map((p) => Math.max(p.p99_ms, p.baseline_p99_ms ?? 0))) * 1.1;
  const x = (i) => PAD + (points.length === 1 ? (W - 2 * PAD) / 2 : (i * (W - 2 * PAD)) / (points.length - 1));
  const y = (v) => H - PAD - (v / top) * (H - 2 * PAD);
  const line = (values, cls) => {
    const coords = values.map((v, i) => (v === null || v === undefined ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean);
    return coords.length ? svg("polyline", { points: coords.join(" "), class: cls, fill: "none" }) : null;
  };
  const last = points[points.length - 1];
  const title = t("evidence.chart", { p99: ms(last.p99_ms), base: ms(last.baseline_p99_ms), n: points.length });
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": `${label}: ${title}`, class: "trend" });
  chart.dataset.points = String(points.length);
  const heading = svg("title", {});
  heading.textContent = title;
  chart.append(heading);
  const base = line(points.map((p) => p.baseline_p99_ms), "trend-baseline");
  if (base) chart.append(base);
  chart.append(line(points.map((p) => p.p99_ms), "trend-p99"));
  if (points.some((p) => p.error_rate > 0)) {
    for (const [i, p] of points.entries()) if (p.error_rate > 0) chart.append(svg("circle", { cx: x(i).toFixed(1), cy: y(p.p99_ms).toFixed(1), r: 2.5, class: "trend-error" }));
  }
  return chart;
}

/** One line of figures: runs, errors, error rate, p99 and the baseline's p99. */
export function figures(a) {
  const base = a.baseline ? t("evidence.baseline", { id: a.baseline.id, p99: ms(a.baseline.p99_ms) }) : t("evidence.nobaseline");
  return t("evidence.figures", { runs: a.runs, errors: a.errors, rate: `${(a.error_rate * 100).toFixed(1)}%`, p99: ms(a.p99_ms), base });
}

/** The verdict badge, figures, reasons and chart of one analysis. `waitingFor` comes from the organ status. */
export function evidenceView(a, { label, waitingFor = null, compact = false } = {}) {
  if (!a) return el("p", { class: "muted" }, t("evidence.none"));
  const verdict = el("span", { class: `verdict verdict-${a.verdict}`, dataset: { verdict: a.verdict } }, t(`verdict.${a.verdict}`));
  // Nothing measured: the first reason says why (a draft, no samples), where figures would all be zero.
  const line = a.runs === 0 && (a.reasons || []).length ? a.reasons[0] : figures(a);
  const head = el("p", { class: "evidence-head" }, verdict, " ", el("span", { class: "evidence-figures" }, line));
  const wait = waitingFor ? el("p", { class: "evidence-wait", dataset: { waitingFor } }, t(`waiting.${waitingFor}`)) : null;
  if (compact) return el("div", { class: "evidence evidence-compact", dataset: { verdict: a.verdict } }, head);
  const reasons = (a.reasons || []).length ? el("ul", { class: "evidence-reasons" }, a.reasons.map((r) => el("li", {}, r))) : null;
  return el("div", { class: "evidence", dataset: { verdict: a.verdict } }, head, wait, reasons, trendChart(a.trend, label));
}
