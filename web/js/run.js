// A run's answer (contract §6: {ok, run_id, output, trace, ms, error?}), shown the same way in the chat and in the
// panel's try-it box: audio to play, an image at its size, text, a small JSON block, the trace and the failure.

import { t } from "./i18n.js";
import { el } from "./shell.js";
import { formatMs } from "./timeline.js";

// Blob URLs of audio outputs by run id: a redraw (a language switch, a reload of the status) reuses the URL
// instead of decoding the sound again; releaseRun() frees it when its run leaves the page.
const audioUrls = new Map();

/** The bytes of a base64 string. */
function bytesOf(b64) {
  const raw = atob(b64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** A Blob URL for a run's audio (the CSP allows `media-src blob:`; a data: URL of a long WAV is slow to parse). */
function audioUrl(runId, out) {
  let url = audioUrls.get(runId);
  if (!url) {
    url = URL.createObjectURL(new Blob([bytesOf(out.data_b64)], { type: out.media_type || "audio/wav" }));
    audioUrls.set(runId, url);
  }
  return url;
}

/** Forget the Blob URL of a run that is no longer shown. */
export function releaseRun(run) {
  const url = run && audioUrls.get(run.run_id);
  if (!url) return;
  URL.revokeObjectURL(url);
  audioUrls.delete(run.run_id);
}

/** A cell's time: most take well under a millisecond, which "0 ms" would hide. */
const stepMs = (ms) => (ms < 1 ? "<1 ms" : ms < 10 ? `${ms.toFixed(1)} ms` : formatMs(ms));

/** A duration of speech for people: seconds with one decimal. */
const seconds = (ms, lang) => t("run.seconds", { s: (ms / 1000).toFixed(1) }, lang);

function renderAudio(run, out, lang) {
  if (!out.data_b64) return el("p", { class: "muted run-gone" }, t("run.notkept", {}, lang));
  const url = audioUrl(run.run_id, out);
  return el(
    "div",
    { class: "run-audio" },
    el("audio", { controls: true, preload: "metadata", src: url, "aria-label": t("run.audio", {}, lang), dataset: { durationMs: String(out.duration_ms ?? "") } }),
    el("span", { class: "muted" }, seconds(out.duration_ms ?? 0, lang)),
    el("a", { href: url, download: `${run.run_id}.wav`, class: "run-download" }, t("run.download", {}, lang)),
  );
}

function renderImage(out, lang) {
  if (!out.data_b64) return el("p", { class: "muted run-gone" }, t("run.notkept", {}, lang));
  const size = out.width && out.height ? `${out.width} × ${out.height}` : "";
  return el(
    "figure",
    { class: "run-image" },
    // img-src allows data: already (the API page's icons); the browser decodes it at its own size.
    el("img", { src: `data:${out.media_type || "image/png"};base64,${out.data_b64}`, width: out.width || null, height: out.height || null, alt: t("run.image", { size }, lang) }),
    size ? el("figcaption", { class: "muted" }, size) : null,
  );
}

/** The output payload of a run, by its type. */
export function renderOutput(run, lang) {
  const out = run.output;
  if (!out) return null;
  const box = el("div", { class: "run-output", dataset: { type: out.type } });
  switch (out.type) {
    case "audio":
      box.append(renderAudio(run, out, lang));
      break;
    case "image":
      box.append(renderImage(out, lang));
      break;
    case "json":
      box.append(el("pre", { class: "run-json", tabindex: "0" }, JSON.stringify(out.data, null, 2)));
      break;
    case "phonemes":
      box.append(el("p", { class: "run-text mono", lang: out.lang || null }, out.text));
      break;
    default:
      box.append(el("p", { class: "run-text" }, out.text ?? JSON.stringify(out)));
  }
  return box;
}

/** Why a run stopped, in the page's language: which cell, what kind of failure, and the server's reason. */
export function renderFailure(error, lang) {
  if (!error) return null;
  const kind = t(`run.code.${error.code}`, {}, lang);
  return el(
    "p",
    { class: "run-error", role: "alert", dataset: { code: error.code || "" } },
    el("strong", {}, t("run.failed", { cell: error.cell || "?" }, lang)),
    ` ${kind === `run.code.${error.code}` ? error.code : kind}`,
    error.reason ? `: ${error.reason}` : "",
  );
}

/** The trace, one step per cell: its template id, its time and whether it went well. */
export function renderTrace(trace, lang) {
  if (!trace?.length) return null;
  return el(
    "ol",
    { class: "run-trace", "aria-label": t("run.trace", {}, lang) },
    trace.map((step) =>
      el(
        "li",
        { dataset: { ok: String(step.ok), cell: step.cell } },
        el(
          "span",
          { class: "run-step", title: step.impl ? `${step.cell} (${step.impl})` : step.cell },
          el("span", { class: "run-mark", "aria-hidden": "true" }, step.ok ? "✓" : "✗"),
          el("code", {}, step.cell),
          el("span", { class: "run-ms" }, stepMs(step.ms ?? 0)),
          el("span", { class: "visually-hidden" }, step.ok ? t("run.ok", {}, lang) : t("run.notok", {}, lang)),
        ),
      ),
    ),
  );
}

/**
 * The whole answer of a run: a head line (what ran, how long), the output or the failure, and the trace, in
 * `lang` (the chat passes its reply's language, so an old reply keeps speaking the language it was given in).
 */
export function renderRun(run, lang) {
  const what = [run.organ_id, run.pathway].filter(Boolean).join(" · ");
  return el(
    "section",
    { class: "run", lang: lang || null, dataset: { ok: String(run.ok), runId: run.run_id || "" } },
    el("p", { class: "run-head" }, t(run.ok ? "run.done" : "run.stopped", { what: what || t("run.cell", {}, lang), ms: stepMs(run.ms ?? 0) }, lang)),
    run.ok ? renderOutput(run, lang) : renderFailure(run.error, lang),
    renderTrace(run.trace, lang),
  );
}
