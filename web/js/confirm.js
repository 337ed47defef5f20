// The confirmation asked before destructive actions on the panel (a modal <dialog>).

const $ = (sel) => document.querySelector(sel);

/** Ask before a destructive action; resolves true only on an explicit yes. */
export function confirmAction(message) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = message;
  dialog.returnValue = "";
  dialog.showModal();
  $("#confirm-back").focus();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}

/** Ask for the reason of a forced decision; resolves the trimmed reason, or "" when the user backs out. */
export function askReason(message) {
  const dialog = $("#reason");
  const input = $("#reason-text");
  $("#reason-prompt").textContent = message;
  input.value = "";
  dialog.returnValue = "";
  dialog.showModal();
  input.focus();
  return new Promise((resolve) =>
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? input.value.trim() : ""), { once: true }));
}
