// The server's signing keys, as keyward signing-keys list shows them
// (GET /v1/signing-keys), and rotating them at once, as keyward
// signing-keys rotate does (POST /v1/signing-keys/rotate).

import { admin } from "./api.js";
import { h, table, fmtTime, button, confirmAction } from "./dom.js";
import { auditHash } from "./audit.js";
import { cell } from "./goquote.js";

// STATES orders the keys: the one signing first, then the one to sign
// next, then the retired ones, newest first.
const STATES = { current: 0, next: 1, retired: 2 };

// signingKeysView lists the signing keys; go(hash, notice) shows a view
// again with a notice.
export async function signingKeysView(go) {
  const { signing_keys: keys } = await admin.get("/signing-keys");
  keys.sort((a, b) => STATES[a.state] - STATES[b.state] || String(b.created_at).localeCompare(String(a.created_at)));
  const current = keys.find((k) => k.state === "current"), next = keys.find((k) => k.state === "next");
  const rotate = button("Rotate now", async () => {
    const what = next ? `The next key ${cell(next.key_id)} signs every token from now on` : "A new key signs every token from now on";
    if (!await confirmAction(`Rotate the signing keys now? ${what}, and a new next key is created. `
      + (current ? `The current key ${cell(current.key_id)} is retired: it stays in the JWKS until the tokens it signed have expired, so they still verify. ` : "")
      + "APIs that verify JWTs themselves fetch the JWKS again when they meet the new key's kid.", "Rotate")) return;
    const res = await admin.post("/signing-keys/rotate");
    const now = res.signing_keys.find((k) => k.state === "current");
    await go(location.hash, `Rotated the signing keys: ${now ? cell(now.key_id) : "a new key"} signs from now on.`);
  }, "danger");
  return h("section", {}, h("h1", {}, "Signing keys"),
    h("p", {}, "The server signs JWT access tokens with its current key. The JWKS publishes the next key before it signs and keeps "
      + "retired keys until the tokens they signed have expired, so APIs never meet an unknown kid. Keys rotate on the server's "
      + "schedule (--signing-key-rotation) and on demand."),
    table([
      ["Key ID (kid)", (k) => h("code", {}, cell(k.key_id))],
      ["Algorithm", (k) => k.algorithm],
      ["State", (k) => h("span", { class: k.state === "retired" ? "state" : "state on" }, k.state)],
      ["Created", (k) => fmtTime(k.created_at)],
      ["Signing since", (k) => fmtTime(k.activated_at)],
      ["Retired", (k) => fmtTime(k.retired_at)],
    ], keys, "No signing keys."),
    h("div", { class: "actions" }, rotate),
    h("p", {}, h("a", { href: auditHash({ action: "signing_key.rotate" }) }, "Rotations in the audit log")));
}
