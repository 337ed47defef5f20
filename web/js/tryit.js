// The panel's runs of one organ: its recent run figures (status `metrics.runs`) and a "try it" box that runs
// it on a text or an uploaded image (`POST /organs/{id}/run {input}`) and shows the answer as the chat does.

import { api } from "./api.js";
import { stateLabel, t } from "./i18n.js";
import { el, formatTime } from "./shell.js";
import { releaseRun, renderRun } from "./run.js";
import { formatMs } from "./timeline.js";

const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/webp"]);
// Request bodies are limited to 1 MiB and base64 makes bytes a third larger: stay under it with the JSON around.
const MAX_IMAGE_BYTES = 760 * 1024;
const boxes = new Map(); // organ id → {node, parts, run, state}: kept across redraws of the status

/** The organ's recent run figures: totals, the window's error rate and latencies, the last run's time. */
export function renderRunFigures(runs) {
  if (!runs?.total) return el("p", { class: "muted", dataset: { runs: "0" } }, t("runs.none"));
  const w = runs.window || {};
  const rows = [
    [t("runs.total"), String(runs.total)],
    [t("runs.ok"), String(runs.ok ?? 0)],
    [t("runs.failed"), String(runs.failed ?? 0)],
    [t("runs.error_rate", { n: w.runs ?? runs.total }), `${((w.error_rate ?? 0) * 100).toFixed(1)} %`],
    [t("runs.p50"), w.p50_ms === undefined || w.p50_ms === null ? "—" : formatMs(w.p50_ms)],
    [t("runs.p99"), w.p99_ms === undefined || w.p99_ms === null ? "—" : formatMs(w.p99_ms)],
    [t("runs.last"), formatTime(runs.last_at).text],
  ];
  return el("dl", { class: "metrics-list", dataset: { runs: String(runs.total) } }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

/** The payload for what the person gave: the chosen image, else the text; null when neither. */
async function inputOf(parts) {
  const file = parts.file.files?.[0];
  if (file) {
    if (!IMAGE_TYPES.has(file.type)) throw new Error(t("try.badimage"));
    if (file.size > MAX_IMAGE_BYTES) throw new Error(t("try.toolarge", { kb: Math.round(MAX_IMAGE_BYTES / 1024) }));
    const url = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result));
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
    return { type: "image", media_type: file.type, data_b64: url.slice(url.indexOf(",") + 1) };
  }
  const text = parts.text.value.trim();
  return text ? { type: "text", text } : null;
}

/** Why the server would not run it, in the page's language around the server's reason. */
function refusal(err) {
  if (err.code === "network") return t("error.network");
  if (err.status === 429) return t("try.busy");
  return `${t("try.refused", { code: err.code })} ${err.reason}`;
}

function say(box, text, error = false) {
  box.parts.message.textContent = text;
  box.parts.message.hidden = !text;
  box.parts.message.classList.toggle("is-error", error);
  box.parts.message.setAttribute("role", error ? "alert" : "status");
}

async function run(id, box, onRun) {
  const { parts } = box;
  say(box, "");
  let input;
  try {
    input = await inputOf(parts);
  } catch (err) {
    return say(box, err.message, true);
  }
  if (!input) return say(box, t("try.empty"), true);
  parts.run.disabled = true;
  parts.run.textContent = t("try.running");
  try {
    const result = await api("POST", `/organs/${encodeURIComponent(id)}/run`, { input });
    releaseRun(box.run);
    box.run = result;
    parts.result.replaceChildren(renderRun(result));
    onRun(id);
  } catch (err) {
    if (err.status !== 401) say(box, refusal(err), true);
  } finally {
    parts.run.disabled = false;
    parts.run.textContent = t("try.run");
  }
}

function build(id, onRun) {
  const slug = id.replace(/[^\w-]/g, "_");
  const parts = {
    heading: el("h4", { id: `try-${slug}-title` }),
    cannot: el("p", { class: "tryit-cannot", role: "status", hidden: true }),
    textLabel: el("span"),
    text: el("input", { type: "text", name: "text", autocomplete: "off", spellcheck: "false", id: `try-${slug}-text` }),
    fileLabel: el("span"),
    file: el("input", { type: "file", name: "image", accept: [...IMAGE_TYPES].join(","), id: `try-${slug}-image` }),
    clear: el("button", { type: "button", class: "icon-button", hidden: true }, "×"),
    run: el("button", { type: "submit", class: "button primary" }),
    hint: el("p", { class: "tryit-hint", id: `try-${slug}-hint` }),
    message: el("p", { class: "tryit-message", hidden: true }),
    result: el("div", { class: "tryit-result", "aria-live": "polite" }),
  };
  const box = { parts, run: null, state: null };
  parts.file.addEventListener("change", () => {
    parts.clear.hidden = !parts.file.files?.length;
    say(box, "");
  });
  parts.clear.addEventListener("click", () => {
    parts.file.value = "";
    parts.clear.hidden = true;
    parts.file.focus();
  });
  const form = el(
    "form",
    { class: "tryit-form", "aria-describedby": parts.hint.id, onsubmit: (ev) => (ev.preventDefault(), run(id, box, onRun)) },
    el("label", { for: parts.text.id }, parts.textLabel, parts.text),
    el("label", { for: parts.file.id }, parts.fileLabel, el("span", { class: "tryit-file" }, parts.file, parts.clear)),
    parts.run,
  );
  parts.form = form;
  box.node = el(
    "section",
    { class: "tryit", dataset: { tryFor: id }, "aria-labelledby": parts.heading.id },
    parts.heading, parts.cannot, form, parts.hint, parts.message, parts.result,
  );
  return box;
}

/**
 * The try-it box of an organ, made once and kept (what was typed and the last answer survive the status's
 * redraws), brought up to date with its status: only an organ that can run (not failed) offers the form.
 */
export function tryBox(status, onRun = () => {}) {
  const id = status.id;
  let box = boxes.get(id);
  if (!box) boxes.set(id, (box = build(id, onRun)));
  const { parts } = box;
  const runnable = status.state !== "failed";
  parts.heading.textContent = t("try.heading");
  parts.textLabel.textContent = t("try.text");
  parts.text.placeholder = t("try.placeholder");
  parts.fileLabel.textContent = t("try.image");
  parts.clear.setAttribute("aria-label", t("try.clear"));
  parts.clear.title = t("try.clear");
  if (!parts.run.disabled) parts.run.textContent = t("try.run");
  parts.hint.textContent = t("try.hint");
  parts.cannot.textContent = runnable ? "" : t("try.cannot", { state: stateLabel(status.state) });
  parts.cannot.hidden = runnable;
  parts.form.hidden = !runnable;
  parts.hint.hidden = !runnable;
  box.node.dataset.runnable = String(runnable);
  if (box.state !== null && box.state !== status.state) say(box, ""); // a refusal said of the old state is stale
  box.state = status.state;
  if (box.run && box.lang !== document.documentElement.lang) parts.result.replaceChildren(renderRun(box.run));
  box.lang = document.documentElement.lang;
  return box.node;
}
