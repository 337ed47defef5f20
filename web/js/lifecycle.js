// The server's transition tables (GET /api/neira/lifecycle): the pages offer only the moves that are legal.

import { api } from "./api.js";

let tables = null;

/** Load both tables once; later calls reuse them. */
export async function loadLifecycle() {
  if (!tables) tables = await api("GET", "/api/neira/lifecycle");
  return tables;
}

/** Whether `via` (approve, disable, rollback, cancel, rebuild, …) is legal for a `kind` ("cells" | "organs") in `state`. */
export function legal(kind, state, via) {
  const moves = tables?.[kind]?.transitions || [];
  return moves.some((m) => m.from === state && m.via === via);
}

/** Whether a state is one of the build's stages in progress (an organ that is not stable and not failed). */
export function building(state) {
  return legal("organs", state, "cancel");
}
