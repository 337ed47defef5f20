// The confirmation asked before destructive actions on the panel (a modal <dialog>).

const $ = (sel) => document.querySelector(sel);

/** Show `dialog` with `focus` focused; resolves "ok" or "" from the user's own answer to this opening.

The answer is read from the form's submit (which button) and the dialog's cancel (Escape), both dispatched
with the user's action. The dialog's close event is not used: it is queued as a task, so the close of an
opening the user just backed out of can arrive after the dialog was opened again, and would answer that. */
function ask(dialog, focus) {
  dialog.returnValue = "";
  dialog.showModal();
  focus.focus();
  return new Promise((resolve) => {
    const done = new AbortController();
    const settle = (answer) => {
      done.abort();
      resolve(answer);
    };
    dialog.querySelector("form").addEventListener("submit", (e) => settle(e.submitter?.value === "ok" ? "ok" : ""), { signal: done.signal });
    dialog.addEventListener("cancel", () => settle(""), { signal: done.signal });
  });
}

/** Ask before a destructive action; resolves true only on an explicit yes. */
export async function confirmAction(message) {
  $("#confirm-text").textContent = message;
  return (await ask($("#confirm"), $("#confirm-back"))) === "ok";
}

/** Ask for the reason of a forced decision; resolves the trimmed reason, or "" when the user backs out. */
export async function askReason(message) {
  const input = $("#reason-text");
  $("#reason-prompt").textContent = message;
  input.value = "";
  return (await ask($("#reason"), input)) === "ok" ? input.value.trim() : "";
}
