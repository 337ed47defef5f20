// The chat session (id, messages, sent commands), kept in localStorage across reloads.

const SESSION_KEY = "neira.session";
const MAX_MESSAGES = 200;
// A run's audio or image rides in its reply as base64. Up to this many characters (about two seconds of speech)
// it is kept with the session; a larger one is left out of storage (the page says so after a reload), so a few
// long answers cannot push the conversation out of localStorage's few megabytes.
const MAX_KEPT_B64 = 128 * 1024;
const keepSmall = (key, value) => (key === "data_b64" && typeof value === "string" && value.length > MAX_KEPT_B64 ? undefined : value);

/** A random id (not crypto.randomUUID: that needs a secure context, and LAN addresses are not one). */
export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The stored session {id, messages, commands}, or a new one. */
export function loadSession() {
  try {
    const data = JSON.parse(localStorage.getItem(SESSION_KEY));
    if (data?.id && Array.isArray(data.messages)) return { commands: [], ...data };
  } catch {
    /* a damaged session starts afresh */
  }
  return { id: newId(), messages: [], commands: [] };
}

/** Store the session, trimmed to the newest messages. */
export function saveSession(session) {
  session.messages = session.messages.slice(-MAX_MESSAGES);
  session.commands = session.commands.slice(-MAX_MESSAGES);
  // When storage is full, keep the newer half of the history rather than nothing.
  for (let keep = session.messages.length; keep >= 0; keep = keep ? Math.floor(keep / 2) : -1) {
    try {
      localStorage.setItem(SESSION_KEY, JSON.stringify({ ...session, messages: session.messages.slice(-keep || session.messages.length) }, keepSmall));
      return;
    } catch {
      /* quota exceeded: try with less */
    }
  }
}
