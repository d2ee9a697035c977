// Revoking one access token by its ID (jti), as keyward tokens revoke
// does: POST /v1/tokens/revoke.

import { admin } from "./api.js";
import { h, act, confirmAction, showNotice } from "./dom.js";
import { auditHash } from "./audit.js";
import { quote } from "./goquote.js";

// tokensView offers to revoke a token; jti, from the address (a token.issued
// event of the audit log links here), fills the form in. A link anyone
// may craft names it, so the messages quote it (as Go's strconv.Quote
// does): words in it, or a bidirectional override, do not pass for the
// console's or the server's own.
export async function tokensView(jti = "") {
  const input = h("input", { id: "revoke-jti", value: jti, required: true, autocomplete: "off", spellcheck: false });
  const submit = h("button", { type: "submit" }, "Revoke");
  const form = h("form", { class: "inline", id: "revoke-form" }, h("label", { for: input.id }, "Token ID (jti)"), input, submit);
  form.addEventListener("submit", act(submit, async () => {
    const id = input.value.trim();
    if (!await confirmAction(`Revoke the token ${quote(id)}? Introspection and the admin API take it as inactive at once; `
      + "an API that verifies JWTs itself does not see revocations and accepts it until it expires.", "Revoke")) return;
    const res = await admin.post("/tokens/revoke", { jti: id });
    input.value = "";
    // The server's note says whether it had the token on record (opaque
    // tokens) or not (JWTs, or a mistyped ID: it cannot tell).
    showNotice(`Token ID ${quote(res.revoked)}: ${res.note}`);
  }));
  return h("section", {}, h("h1", {}, "Revoke a token"),
    h("p", {}, "A token's ID is the jti claim of a JWT, the jti that introspection reports for an opaque token, or the token_id "
      + "of its token.issued event in the audit log, which links here. To stop all of an account's tokens, disable the account "
      + "or use Revoke its tokens on the account's page."),
    form,
    h("p", {}, h("a", { href: auditHash({ action: "token.revoke" }) }, "Revocations in the audit log")));
}
