// The chat page: send commands, show plans, apply them and follow each organ's build live.

import { api, openStream } from "./api.js";
import { currentLang, followLang, t } from "./i18n.js";
import { organIdsFrom, renderPlan, renderSuggestions, renderViolations, suggestedPhrases } from "./plan.js";
import { releaseRun, renderRun } from "./run.js";
import { loadSession, newId, saveSession as store } from "./session.js";
import { el, initShell, showError } from "./shell.js";
import { STAGES, TERMINAL, setStage, stageBar } from "./stages.js";

const EXAMPLES = {
  ru: ["создай голосовой орган v1", "обнови зрение до v2 (grayscale)", "собери speak-pipeline normalize→phonemes→adapter"],
  en: ["create voice organ v1", "update vision to v2 (grayscale)", "build speak-pipeline normalize -> phonemes -> adapter"],
};

// Commands about one organ whose progress is worth following live in the reply.
const FOLLOW_TARGET = new Set(["status", "rebuild", "cancel_build"]);

const list = document.querySelector("#messages");
const form = document.querySelector("#composer");
const input = document.querySelector("#input");
const sendButton = document.querySelector("#send");

let session = loadSession();
const saveSession = () => store(session);
const streams = new Map(); // organ id → open stream
const bars = new Map(); // organ id → Set of progress bars on screen
let recall = null; // index into session.commands while ↑/↓ walks them

function fillInput(text) {
  input.value = text;
  autosize();
  input.focus();
  input.setSelectionRange(text.length, text.length);
}

function autosize() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

// ---- rendering -------------------------------------------------------------

function renderAll() {
  bars.clear();
  list.replaceChildren();
  document.querySelector("#session-id").textContent = t("chat.session", { id: session.id.slice(0, 8) });
  if (!session.messages.length) list.append(renderWelcome());
  for (const msg of session.messages) list.append(renderMessage(msg));
  scrollToEnd();
}

function renderWelcome() {
  return el(
    "li",
    { class: "msg msg-welcome" },
    el("div", { class: "card" }, renderSuggestions(EXAMPLES[currentLang()], fillInput, t("chat.welcome"))),
  );
}

function renderMessage(msg) {
  if (msg.role === "user") {
    return el(
      "li",
      { class: "msg msg-user" },
      el("span", { class: "visually-hidden" }, `${t("chat.you")}: `),
      el("div", { class: "bubble" }, msg.text),
    );
  }
  if (msg.role === "error") {
    return el("li", { class: "msg msg-neira" }, el("div", { class: "card card-error", role: "alert" }, msg.text));
  }
  const node = el("li", { class: "msg msg-neira", dataset: { msgId: msg.id } });
  node.append(renderReply(msg));
  return node;
}

function replyText(res) {
  const reply = res?.reply;
  if (typeof reply === "string") return reply;
  return reply?.text || "";
}

function renderReply(msg) {
  const res = msg.response || {};
  const card = el("article", { class: "card", dataset: { intent: res.intent || "", understood: String(res.understood !== false) } });
  card.append(el("span", { class: "visually-hidden" }, `${t("chat.neira")}: `));
  // The reply repeats the plan's text for terminals; the page shows the plan on its own below.
  let text = replyText(res);
  if (res.plan?.text && text.includes(res.plan.text)) text = text.replace(res.plan.text, "").trim();
  // A run's reply sums up its output for terminals; the page shows the run itself (audio, image, text, trace,
  // failure) instead. A run that could not start (not_runnable, not_found) has only its reply: a refusal.
  const refused = res.intent === "run" && !res.run && res.error;
  if (res.run) card.append(renderRun(res.run, res.lang));
  else if (text) card.append(el("p", { class: refused ? "reply-text run-refused" : "reply-text", role: refused ? "alert" : null }, text));

  if (res.understood === false && res.error) {
    const err = res.error;
    if (err.expected?.length) {
      const words = err.expected.join(", ");
      const where = Number.isInteger(err.position) ? ` (${t("reply.position", { pos: err.position })})` : "";
      card.append(el("p", { class: "expected" }, t("reply.expected", { words }) + where));
    }
  }
  const sugg = renderSuggestions(suggestedPhrases(res, msg.request), fillInput,
    res.intent === "announcement" ? t("reply.next") : undefined);
  if (sugg) card.append(sugg);

  const violations = renderViolations(res.policy?.violations);
  if (res.plan) card.append(renderPlan(res.plan));
  if (violations) card.append(violations);
  if (res.plan) card.append(renderPlanActions(msg));
  if (msg.organs?.length) card.append(renderOrgans(msg));
  return card;
}

function canApply(res) {
  return res.policy?.allowed !== false && (res.plan?.changes?.length ?? 1) > 0;
}

function renderPlanActions(msg) {
  const res = msg.response;
  const box = el("div", { class: "plan-actions" });
  const state = msg.plan_state || "pending";
  if (state === "pending" || state === "applying") {
    const busy = state === "applying";
    if (res.policy?.allowed === false) box.append(el("p", { class: "denied" }, t("plan.denied")));
    box.append(
      el(
        "button",
        { type: "button", class: "button primary", disabled: busy || !canApply(res), onclick: () => applyPlan(msg) },
        busy ? t("plan.applying") : t("plan.apply"),
      ),
      el("button", { type: "button", class: "button", disabled: busy, onclick: () => discardPlan(msg) }, t("plan.discard")),
    );
  } else {
    box.append(el("p", { class: `plan-state plan-${state}`, role: "status" }, t(`plan.${state}`)));
    if (msg.apply_result_reply) box.append(el("p", { class: "reply-text" }, msg.apply_result_reply));
  }
  if (msg.apply_error) box.append(el("p", { class: "apply-error", role: "alert" }, msg.apply_error));
  return box;
}

function renderOrgans(msg) {
  const wrap = el("ul", { class: "organ-progress" });
  for (const organ of msg.organs) {
    const label = t("organ.progress", { id: organ.id });
    const bar = stageBar(organ.state, { label });
    if (organ.reached !== undefined) bar.dataset.reached = String(organ.reached);
    setStage(bar, organ.state);
    const known = bars.get(organ.id) ?? new Set();
    for (const old of known) if (!old.isConnected) known.delete(old); // bars of redrawn replies
    bars.set(organ.id, known.add(bar));
    const note = organ.state === "failed" ? t("organ.failed") : organ.state === "stable" ? t("organ.stable") : "";
    wrap.append(
      el(
        "li",
        { class: "organ-item", dataset: { organId: organ.id, state: organ.state } },
        el(
          "div",
          { class: "organ-head" },
          el("span", { class: "organ-label" }, label),
          el("a", { href: `organs.html#organ=${encodeURIComponent(organ.id)}` }, t("organ.open")),
        ),
        bar,
        el("p", { class: "organ-note", "aria-live": "polite" }, organ.error || note),
      ),
    );
  }
  return wrap;
}

/** Redraw only a reply's plan actions and build progress: replacing the whole card would make screen
 * readers read the log entry (plan and all) again on every click. */
function rerender(msg) {
  const card = list.querySelector(`[data-msg-id="${msg.id}"] > article`);
  if (!card) return;
  card.querySelector(".plan-actions")?.replaceWith(renderPlanActions(msg));
  if (!msg.organs?.length) return;
  const progress = renderOrgans(msg);
  const old = card.querySelector(".organ-progress");
  if (old) old.replaceWith(progress);
  else card.append(progress);
}

function scrollToEnd() {
  list.lastElementChild?.scrollIntoView({ block: "end" });
}

// ---- actions ---------------------------------------------------------------

async function send(raw) {
  const text = raw.trim();
  if (!text) return;
  recall = null;
  input.value = "";
  autosize();
  list.querySelector(".msg-welcome")?.remove();
  const userMsg = { id: newId(), role: "user", text };
  session.messages.push(userMsg);
  session.commands.push(text);
  saveSession();
  list.append(renderMessage(userMsg));
  const thinking = el("li", { class: "msg msg-neira msg-thinking", "aria-hidden": "true" }, el("div", { class: "card" }, t("chat.thinking")));
  list.append(thinking);
  scrollToEnd();
  sendButton.disabled = true;
  try {
    const res = await api("POST", "/api/neira/commands", { text, session_id: session.id });
    // The server echoes the session id (or makes one); keep whatever it uses so «применить» finds the plan.
    if (typeof res?.session_id === "string" && res.session_id && res.session_id !== session.id) {
      session.id = res.session_id;
      document.querySelector("#session-id").textContent = t("chat.session", { id: session.id.slice(0, 8) });
    }
    const msg = { id: newId(), role: "neira", request: text, response: res };
    if (res?.intent === "apply" && res.understood !== false) takeApplied(msg, res);
    else if (FOLLOW_TARGET.has(res?.intent) && res.target?.kind === "organ" && res.target.id) {
      msg.organs = [{ id: res.target.id, state: res.result?.state || "draft" }];
    }
    session.messages.push(msg);
    thinking.replaceWith(renderMessage(msg));
    followLang(res?.lang); // the UI speaks the language of the conversation (redraws the log when it changes)
    watchOrgans(msg);
  } catch (err) {
    thinking.remove();
    if (err.status !== 401) {
      const msg = { id: newId(), role: "error", text: err.code === "network" ? t("error.network") : err.reason };
      session.messages.push(msg);
      list.append(renderMessage(msg));
    }
  } finally {
    sendButton.disabled = false;
    saveSession();
    scrollToEnd();
  }
}

/** The organs an apply result names, each at the state the apply left it in: a moved organ where the move
 * took it, a new build at draft (its stream then follows it). */
function appliedOrgans(result) {
  const moved = new Map((result?.applied || []).filter((a) => a.kind === "organ" && typeof a.after === "string")
    .map((a) => [a.organ_id ?? a.record_id, a.after]));
  return organIdsFrom(result).map((id) => {
    const state = moved.get(id) ?? "draft";
    return { id, state, reached: Math.max(STAGES.indexOf(state), 0) };
  });
}

function takeApplied(msg, result) {
  msg.organs = appliedOrgans(result);
  // "apply" typed in the chat carries out the last pending plan of the session.
  const pending = [...session.messages].reverse().find((m) => m.role === "neira" && m.response?.plan && (m.plan_state || "pending") === "pending");
  if (pending && msg.response !== pending.response) {
    pending.plan_state = "applied";
    rerender(pending);
  }
}

async function applyPlan(msg) {
  msg.plan_state = "applying";
  msg.apply_error = "";
  rerender(msg);
  try {
    const planId = encodeURIComponent(msg.response.plan.id);
    const result = await api("POST", `/api/neira/commands/plans/${planId}/apply`);
    msg.plan_state = "applied";
    msg.apply_result_reply = replyText(result);
    msg.organs = appliedOrgans(result);
  } catch (err) {
    msg.plan_state = "pending";
    msg.apply_error = err.status === 401 ? "" : err.code === "network" ? t("error.network") : err.reason;
  }
  saveSession();
  rerender(msg);
  watchOrgans(msg);
  if (msg === session.messages.at(-1)) scrollToEnd();
  input.focus();
}

function discardPlan(msg) {
  msg.plan_state = "discarded";
  saveSession();
  rerender(msg);
  input.focus();
}

/** Follow every unfinished organ of a message through its WebSocket stream. */
function watchOrgans(msg) {
  for (const organ of msg.organs || []) {
    if (TERMINAL.has(organ.state) || streams.has(organ.id)) continue;
    const update = (state, error = "") => {
      for (const m of session.messages) {
        for (const o of m.organs || []) {
          if (o.id !== organ.id) continue;
          if (state) {
            o.state = state;
            if (STAGES.includes(state)) o.reached = STAGES.indexOf(state);
          }
          o.error = error;
        }
      }
      saveSession();
      for (const bar of bars.get(organ.id) || []) {
        setStage(bar, organ.state);
        const item = bar.closest(".organ-item");
        item.dataset.state = organ.state;
        const note = organ.state === "failed" ? t("organ.failed") : organ.state === "stable" ? t("organ.stable") : "";
        item.querySelector(".organ-note").textContent = error || note;
      }
    };
    const stream = openStream(`/organs/${encodeURIComponent(organ.id)}/stream`, {
      onFrame: (frame) => {
        if (frame?.state) update(frame.state);
        if (frame?.waiting_for === "approval") announceWaiting(organ.id, frame);
      },
      onRefused: (err) => update(null, err.reason || ""),
      done: (frame) => TERMINAL.has(frame?.state),
      onStatus: (status) => status === "closed" && streams.delete(organ.id),
    });
    streams.set(organ.id, stream);
  }
}

/** The server says an organ waits for a human (its evidence in words): say it once in the chat, with the
 * phrase that approves it one click away (it answers with a plan, as every lifecycle command does). */
function announceWaiting(organId, frame) {
  const key = `${organId}@${frame.waiting_seq ?? frame.seq}`;
  session.announced = session.announced || [];
  if (session.announced.includes(key)) return;
  session.announced.push(key);
  const lang = currentLang();
  const text = frame.text?.[lang] || frame.text?.en;
  if (!text) return;
  const approve = lang === "ru" ? `одобри ${organId}` : `approve ${organId}`;
  const msg = { id: newId(), role: "neira", response: { intent: "announcement", lang, reply: text, suggestions: [approve], target: { kind: "organ", id: organId } } };
  session.messages.push(msg);
  saveSession();
  list.append(renderMessage(msg));
  scrollToEnd();
}

function newSession() {
  for (const stream of streams.values()) stream.close();
  for (const msg of session.messages) releaseRun(msg.response?.run);
  streams.clear();
  session = { id: newId(), messages: [], commands: session.commands };
  saveSession();
  renderAll();
  input.focus();
}

// ---- input -----------------------------------------------------------------

input.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    form.requestSubmit();
    return;
  }
  const cmds = session.commands;
  const atStart = input.selectionStart === 0 && input.selectionEnd === 0;
  if (ev.key === "ArrowUp" && cmds.length && (input.value === "" || (recall !== null && atStart) || (recall !== null && input.value === cmds[recall]))) {
    ev.preventDefault();
    recall = recall === null ? cmds.length - 1 : Math.max(recall - 1, 0);
    fillInput(cmds[recall]);
  } else if (ev.key === "ArrowDown" && recall !== null && input.value === cmds[recall]) {
    ev.preventDefault();
    recall += 1;
    if (recall >= cmds.length) {
      recall = null;
      fillInput("");
    } else fillInput(cmds[recall]);
  }
});
input.addEventListener("input", () => {
  autosize();
  if (recall !== null && input.value !== session.commands[recall]) recall = null;
});
form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  if (!sendButton.disabled) send(input.value);
});
document.querySelector("#new-session").addEventListener("click", newSession);
document.addEventListener("langchange", renderAll);

initShell({
  onReady: () => {
    renderAll();
    for (const msg of session.messages) watchOrgans(msg);
    input.focus();
  },
});
