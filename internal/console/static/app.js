// The Keyward console: sign-in, a hash router, and the views of service
// accounts, their keys and secrets, the APIs, the audit log, token
// revocation, the signing keys and the organizations, all read and
// changed through the admin REST API.

import { admin, seg, onSessionChange, currentSession, endSession, signOut, leavePage, beginSignIn } from "./api.js";
import { withKeyFile, withToken } from "./signin.js";
import { h, table, fields, state, fmtTime, showError, showNotice, clearAlert, confirmAction, closeConfirm, download, act, button, pager, pageLeft, list, words, unchangedItem, formInput } from "./dom.js";
import { auditView, auditHash } from "./audit.js";
import { quote, cell } from "./goquote.js";
import { tokensView } from "./tokens.js";
import { signingKeysView } from "./signingkeys.js";
import { orgsView, orgView } from "./orgs.js";

const $ = (id) => document.getElementById(id);

// --- routing ---

const routes = [
  [/^#\/accounts$/, accountsView],
  [/^#\/accounts\/([^/]+)$/, accountView],
  [/^#\/apis$/, apisView],
  [/^#\/apis\/([^/]+)$/, apiView],
  [/^#\/audit(?:\?[^#]*)?$/, auditView],
  [/^#\/tokens$/, tokensView],
  [/^#\/tokens\/([^/]+)$/, tokensView],
  [/^#\/orgs$/, () => orgsView(go)],
  [/^#\/orgs\/([^/]+)$/, (domain) => orgView(domain, go)],
  [/^#\/signing-keys$/, () => signingKeysView(go)],
];

let rendering = 0; // the latest render wins when several overlap

// route shows the view the location's hash names; it reports whether it
// could.
async function route() {
  if (!currentSession()) return false;
  if (!location.hash || location.hash === "#" || location.hash === "#/") {
    location.replace("#/accounts");
    return false;
  }
  const n = ++rendering;
  const view = $("view");
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("current", location.hash.startsWith(a.getAttribute("href")));
  }
  const found = routes.find(([re]) => re.test(location.hash));
  if (!found) {
    view.replaceChildren(h("p", {}, "There is no console page ", h("code", {}, quote(location.hash)), "."));
    return false;
  }
  const [re, render] = found;
  view.setAttribute("aria-busy", "true");
  try {
    let args;
    try {
      args = re.exec(location.hash).slice(1).map(decodeURIComponent);
    } catch {
      throw new Error(`The address ${quote(location.hash)} is not valid: it has a broken %-escape.`);
    }
    const el = await render(...args);
    if (n === rendering && currentSession()) view.replaceChildren(el);
    return true;
  } catch (e) {
    if (n !== rendering || !currentSession()) return false;
    showError(e.message);
    view.replaceChildren(h("p", { class: "empty" }, "This page could not be loaded."));
    return false;
  } finally {
    if (n === rendering) view.removeAttribute("aria-busy");
  }
}

// reload shows the current view again, keeping the alert shown.
const reload = () => route();

// pendingNotice is shown once the view changes.
let pendingNotice = null;

// go shows a view (the current one again if hash is the same), with a
// notice. An action's go that comes once the user has left the page it
// began on (pageLeft) shows the notice alone: the page the user went to is
// neither reloaded nor left.
async function go(hash, notice) {
  if (pageLeft()) {
    if (notice) showNotice(notice);
    return;
  }
  if (location.hash !== hash) {
    pendingNotice = notice;
    location.hash = hash;
    return;
  }
  if (await reload() && notice) showNotice(notice);
}

// andList joins names as a sentence does: "a, b and c".
const andList = (names) => (names.length === 1 ? names[0] : names.slice(0, -1).join(", ") + " and " + names.at(-1));

// MAX_KEY_FILE bounds the key, certificate and key files the page reads,
// as keyward bounds them (maxKeyFile): a certificate may come with a long
// chain, which the admin API takes (it registers the first).
const MAX_KEY_FILE = 1 << 20;

// The number fields leave their bounds to the admin API, which says what
// they are (a lifetime of 60 seconds to the server's longest, 0 for the
// default; an expiry of up to 100 years, 0 for never): a min attribute
// made the browser refuse, in its own words, the 0 the admin API takes.

// wholeNumber reads a number field that must hold a whole number.
function wholeNumber(text, what) {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Error(`${what} must be a whole number.`);
  return n;
}

// --- service accounts ---

async function accountsView() {
  const holder = h("div");
  const accounts = pager(holder, (project, tok) => {
    const q = new URLSearchParams({ limit: "50" });
    if (tok) q.set("page_token", tok);
    if (project) q.set("project", project);
    return admin.get("/service-accounts?" + q);
  }, (res, project) => table([
    ["Email", (a) => h("a", { href: "#/accounts/" + seg(a.client_id) }, cell(a.email))],
    ["Display name", (a) => (a.display_name ? cell(a.display_name) : "—")],
    ["Client ID", (a) => h("code", {}, cell(a.client_id))],
    ["Scopes", (a) => list(a.scopes)],
    ["State", (a) => state(a.disabled)],
  ], res.service_accounts, project ? `No service accounts in the project ${cell(project)}.` : "No service accounts."));
  const filter = h("input", { id: "project-filter", type: "search", placeholder: "all projects", autocomplete: "off" });
  const apply = h("button", { type: "submit" }, "Filter");
  const filterForm = h("form", { class: "inline" }, h("label", { for: "project-filter" }, "Project"), filter, apply);
  filterForm.addEventListener("submit", act(apply, () => accounts.show(filter.value.trim())));
  await accounts.show("");
  return h("section", {}, h("h1", {}, "Service accounts"), createAccountForm(), filterForm, holder);
}

function createAccountForm() {
  const submit = h("button", { type: "submit" }, "Create service account");
  const form = h("form", { class: "grid" },
    ...formInput("Name", "name", { required: true, placeholder: "nightly-report" }),
    ...formInput("Project", "project", { required: true, placeholder: "billing" }),
    ...formInput("Display name", "display_name"),
    ...formInput("Description", "description"),
    ...formInput("Scopes (space-separated)", "scopes", { placeholder: "orders.read orders.write" }),
    ...formInput("Token lifetime (seconds, empty for the default)", "lifetime", { type: "number" }),
    h("span"), submit);
  form.addEventListener("submit", act(submit, async () => {
    const f = new FormData(form);
    const body = {
      name: f.get("name").trim(), project: f.get("project").trim(),
      display_name: f.get("display_name"), description: f.get("description"),
      scopes: words(f.get("scopes")),
    };
    if (f.get("lifetime") !== "") body.token_lifetime_seconds = wholeNumber(f.get("lifetime"), "The token lifetime");
    const a = await admin.post("/service-accounts", body);
    await go("#/accounts/" + seg(a.client_id), `Created the service account ${cell(a.email)}.`);
  }));
  return h("details", { class: "box", id: "create-account" }, h("summary", {}, "Create a service account"), form);
}

async function accountView(id) {
  const path = "/service-accounts/" + seg(id);
  const [[a, etag], keys, secrets] = await Promise.all([admin.getTagged(path), admin.get(path + "/keys"), admin.get(path + "/secrets")]);
  // Disable, enable and delete are made only to the account as the page
  // shows it: they send If-Match: etag, a's ETag, and a 412 shows the page
  // again with the account as it is now (unchangedItem).
  const unchanged = (send) => unchangedItem(cell(a.email), () => go(location.hash), send, "The page");
  const toggle = a.disabled
    ? button("Enable", async () => {
      await unchanged(() => admin.post(path + "/enable", undefined, etag));
      await go(location.hash, `Enabled ${cell(a.email)}.`);
    })
    : button("Disable", async () => {
      await unchanged(() => admin.post(path + "/disable", undefined, etag));
      await go(location.hash, `Disabled ${cell(a.email)}; its tokens stop working at once.`);
    });
  const del = button("Delete", async () => {
    if (!await confirmAction(`Delete the service account ${cell(a.email)} with its keys and secrets? This cannot be undone.`, "Delete")) return;
    await unchanged(() => admin.del(path, etag));
    await go("#/accounts", `Deleted the service account ${cell(a.email)}.`);
  }, "danger");
  // Every token issued until now; new ones can still be obtained. APIs that
  // verify JWTs themselves do not hear of it (ADMIN-API.md).
  const revoke = button("Revoke its tokens", async () => {
    if (!await confirmAction(`Revoke every token issued to ${cell(a.email)} until now? Opaque tokens and introspection refuse them at once; ` +
      `APIs that verify JWTs themselves accept them until they expire (at most ${a.token_lifetime_seconds} s). The account can get new tokens.`, "Revoke")) return;
    await admin.post(path + "/revoke-tokens");
    if (currentSession()?.me.client_id === a.client_id) {
      // The console's token was one of them.
      signOut(`Revoked the tokens issued to ${cell(a.email)} until now, the console's too: sign in again.`, false, true);
      return;
    }
    await go(location.hash, `Revoked the tokens issued to ${cell(a.email)} until now.`);
  }, "danger");
  return h("section", {},
    h("p", {}, h("a", { href: "#/accounts" }, "← Service accounts")),
    h("h1", {}, cell(a.email)),
    fields([
      ["Client ID", h("code", {}, cell(a.client_id))],
      ["State", state(a.disabled)],
      ["Display name", a.display_name ? cell(a.display_name) : "—"],
      ["Description", a.description ? cell(a.description) : "—"],
      ["Scopes", list(a.scopes)],
      ["Token lifetime", a.token_lifetime_seconds + " s"],
      ["Token format", a.token_format || "as the APIs say"],
      ["Authentication methods", list(a.auth_methods)],
      ["TLS binding", tlsText(a.tls_binding)],
      ["Tokens revoked before", fmtTime(a.tokens_revoked_before)],
      ["Certificate tokens revoked before", fmtTime(a.cert_tokens_revoked_before)],
      ["Created", fmtTime(a.created_at)],
      ["Updated", fmtTime(a.updated_at)],
    ]),
    h("div", { class: "actions" }, toggle, revoke, del),
    h("p", {}, h("a", { href: auditHash({ account: a.client_id }) }, "Its events in the audit log")),
    editAccountForm(a, path, etag),
    keysSection(a, path, keys.keys),
    secretsSection(path, secrets.secrets));
}

// AUTH_METHODS are the client authentication methods an account may be
// allowed (storage.AuthMethods).
const AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth", "self_signed_tls_client_auth"];

// TLS_BINDINGS are the fields of an account's TLS binding, the
// certificate tls_client_auth accepts (RFC 8705 §2.1.2, storage.TLSBinding);
// a binding names one of them.
const TLS_BINDINGS = [
  ["tls_client_auth_subject_dn", "Subject DN"],
  ["tls_client_auth_san_dns", "SAN DNS name"],
  ["tls_client_auth_san_uri", "SAN URI"],
  ["tls_client_auth_san_ip", "SAN IP address"],
  ["tls_client_auth_san_email", "SAN email"],
];

// tlsKind returns the field a TLS binding names and its value, or ["", ""]
// for none.
function tlsKind(b) {
  const found = TLS_BINDINGS.find(([k]) => b?.[k]);
  return found ? [found[0], b[found[0]]] : ["", ""];
}

// tlsText shows a TLS binding.
function tlsText(b) {
  const found = TLS_BINDINGS.find(([k]) => b?.[k]);
  return found ? [found[1] + " ", h("code", {}, cell(b[found[0]]))] : "—";
}

// sameSet reports whether two lists hold the same strings.
function sameSet(x, y) {
  const a = new Set(x), b = new Set(y);
  return a.size === b.size && [...a].every((v) => b.has(v));
}

// ifUnchanged guards an edit form's save against another administrator's
// change. patch sends the PATCH with If-Match: etag, the ETag of the page's
// copy of what (named by name); the server refuses it (412) if what changed
// since the page showed it, and patch then shows reload, a button labelled
// label that shows the page again with what as it is now (reloaded is its
// notice), and throws an error saying nothing was saved, the form keeping
// what was typed.
function ifUnchanged(name, label, reloaded) {
  const reload = button(label, () => go(location.hash, reloaded));
  reload.hidden = true;
  const patch = async (path, up, etag) => {
    try {
      return await admin.patch(path, up, etag);
    } catch (e) {
      if (e.status !== 412) throw e;
      reload.hidden = false;
      throw new Error(`Nothing was saved: someone else changed ${name} after this page showed it. ${label} to see it as it is now, then make your changes again.`);
    }
  };
  return { reload, patch };
}

// editAccountForm changes an account with the admin API's PATCH, sending
// only what differs from a. The server checks everything (known scopes,
// the lifetime's bounds, that an administrator keeps its own admin scope
// and that one administrator is left); its refusal is shown as it is, and
// the form keeps what was typed. The PATCH carries If-Match: etag, a's
// ETag, so a change someone else made since the page showed a is not
// overwritten: the server refuses (412), and Reload the account shows the
// account as it is now (ifUnchanged).
function editAccountForm(a, path, etag) {
  const scopesNow = a.scopes ?? [], methodsNow = a.auth_methods ?? [];
  const [displayLabel, display] = formInput("Display name", "edit-display_name", { value: a.display_name });
  const [descLabel, desc] = formInput("Description", "edit-description", { value: a.description });
  const [scopesLabel, scopes] = formInput("Scopes (space-separated)", "edit-scopes", { value: scopesNow.join(" ") });
  const [lifeLabel, life] = formInput("Token lifetime (seconds, empty for the default)", "edit-lifetime",
    { type: "number", value: String(a.token_lifetime_seconds) });
  const format = h("select", { id: "f-edit-token_format" },
    h("option", { value: "" }, "as the APIs say"), h("option", { value: "jwt" }, "JWT"), h("option", { value: "opaque" }, "opaque"));
  format.value = a.token_format || "";
  const methods = AUTH_METHODS.map((m) => h("input", { type: "checkbox", id: "f-edit-method-" + m, value: m, checked: methodsNow.includes(m) }));
  const [tlsNow, tlsValueNow] = tlsKind(a.tls_binding);
  const tlsKindSel = h("select", { id: "f-edit-tls-kind", "aria-label": "What the TLS binding names" },
    h("option", { value: "" }, "none"), TLS_BINDINGS.map(([k, label]) => h("option", { value: k }, label)));
  tlsKindSel.value = tlsNow;
  const tlsValue = h("input", { id: "f-edit-tls-value", autocomplete: "off", spellcheck: false, value: tlsValueNow,
    "aria-label": "The TLS binding's value", placeholder: "CN=nightly-report,O=Example" });
  const submit = h("button", { type: "submit" }, "Save changes");
  const { reload, patch } = ifUnchanged(cell(a.email), "Reload the account", `Reloaded ${cell(a.email)} as it is now.`);
  const form = h("form", { class: "grid" },
    displayLabel, display, descLabel, desc, scopesLabel, scopes, lifeLabel, life,
    h("label", { for: format.id }, "Token format"), format,
    h("span", { id: "edit-methods-label" }, "Authentication methods"),
    h("div", { class: "checks", role: "group", "aria-labelledby": "edit-methods-label" },
      methods.map((c) => h("label", { for: c.id }, c, " " + c.value))),
    h("label", { for: tlsKindSel.id }, "TLS binding (the certificate tls_client_auth accepts)"),
    h("span", { class: "checks" }, tlsKindSel, tlsValue),
    h("span"), h("span", { class: "actions" }, submit, reload));
  const what = {
    display_name: "display name", description: "description", scopes: "scopes", token_lifetime_seconds: "token lifetime",
    token_format: "token format", auth_methods: "authentication methods", tls_binding: "TLS binding",
  };
  form.addEventListener("submit", act(submit, async () => {
    const up = {};
    if (display.value !== a.display_name) up.display_name = display.value;
    if (desc.value !== a.description) up.description = desc.value;
    const sc = words(scopes.value);
    if (!sameSet(sc, scopesNow)) up.scopes = sc;
    // Empty asks for the server's default lifetime (0).
    const secs = life.value === "" ? 0 : wholeNumber(life.value, "The token lifetime");
    if (secs !== a.token_lifetime_seconds) up.token_lifetime_seconds = secs;
    if (format.value !== (a.token_format || "")) up.token_format = format.value;
    const ms = methods.filter((c) => c.checked).map((c) => c.value);
    if (!sameSet(ms, methodsNow)) up.auth_methods = ms;
    // A binding names one field; {} removes it. The server checks the
    // value (an RFC 4514 DN, a DNS name, URI, IP or email address) and
    // stores the DN, URI or IP in the form it compares. The value goes as
    // typed: trimmed, a DN ending in an escaped space (CN=job\ ) was cut
    // to one that is none, even when only another field changed.
    const tv = tlsValue.value;
    if (tlsKindSel.value && tv.trim() === "") throw new Error("Give the TLS binding's value, or choose none to remove the binding.");
    if (tlsKindSel.value !== tlsNow || (tlsKindSel.value && tv !== tlsValueNow)) {
      up.tls_binding = tlsKindSel.value ? { [tlsKindSel.value]: tv } : {};
    }
    const changed = Object.keys(up);
    if (changed.length === 0) {
      showNotice("Nothing to save: the form is as the account is.");
      return;
    }
    const updated = await patch(path, up, etag);
    const done = `Updated the ${andList(changed.map((k) => what[k]))} of ${cell(a.email)}.`;
    let note = up.scopes && scopesNow.some((x) => !sc.includes(x))
      ? " Tokens already issued keep the scopes they were issued with until they expire." : "";
    // Changing the certificate binding, or taking tls_client_auth away,
    // ends the tokens the account got with a certificate (ADMIN-API.md):
    // the console's own too when the account is the one signed in and
    // its token was got with a certificate (a pasted one; a key file's is
    // got with a key).
    if (updated?.cert_tokens_revoked_before && updated.cert_tokens_revoked_before !== a.cert_tokens_revoked_before) {
      const s = currentSession();
      if (s?.me.client_id === a.client_id && s.me.token?.credential?.startsWith("cert:")) {
        signOut(`${done} That ended the tokens your account got with a certificate, the console's too: sign in again.`, false, true);
        return;
      }
      note += " That ended the tokens it got with a certificate until now: the certificates it was bound to are no longer trusted. Those got with its keys or secrets stay active.";
    }
    await go(location.hash, done + note);
  }));
  return h("details", { class: "box", id: "edit-account" }, h("summary", {}, "Edit the account"), form);
}

// keysSection lists the account's keys; disabling, enabling or deleting
// one sends If-Match with the key's etag from the list (unchangedItem).
function keysSection(a, path, keys) {
  const days = h("input", { id: "key-days", type: "number", placeholder: "never" });
  const create = h("button", { type: "submit" }, "Create key");
  const form = h("form", { class: "inline" }, h("label", { for: "key-days" }, "Expires in days"), days, create);
  form.addEventListener("submit", act(create, async () => {
    const body = days.value === "" ? {} : { expires_in_seconds: wholeNumber(days.value, "The days until the key expires") * 86400 };
    const kf = await admin.post(path + "/keys", body);
    if (!form.isConnected) {
      // The page was left, shown again or signed out of before the answer
      // came: the key file is not downloaded into a session, or for a
      // user, that may no longer be the one that asked. The key is kept;
      // its private key was in this answer only.
      throw new Error(`Created the key ${cell(kf.private_key_id)} of ${cell(a.email)}, but its page was left, shown again or signed out of before the server answered: `
        + "its key file was not downloaded, and its private key cannot be had again. Delete the key on the account's page, and create another there.");
    }
    download(`${a.name}-${a.project}-${kf.private_key_id.slice(0, 8)}.json`, JSON.stringify(kf, null, 2) + "\n");
    await go(location.hash, `Created the key ${cell(kf.private_key_id)}. Its key file was downloaded; the private key is in that file only, so keep it safe.`);
  }));
  const kpath = (k) => path + "/keys/" + seg(k.key_id);
  const unchanged = (k, send) => unchangedItem(`the key ${cell(k.key_id)}`, () => go(location.hash), send);
  return h("section", {}, h("h2", {}, "Keys"),
    table([
      ["Key ID", (k) => h("code", {}, cell(k.key_id))],
      ["Algorithm", (k) => k.algorithm],
      ["Origin", (k) => k.origin],
      ["State", (k) => state(k.disabled)],
      ["Created", (k) => fmtTime(k.created_at)],
      ["Expires", (k) => fmtTime(k.expires_at)],
      ["", (k) => h("span", { class: "actions" },
        k.disabled
          ? button("Enable", async () => {
            await unchanged(k, () => admin.post(kpath(k) + "/enable", undefined, k.etag));
            await go(location.hash, `Enabled the key ${cell(k.key_id)}.`);
          })
          : button("Disable", async () => {
            await unchanged(k, () => admin.post(kpath(k) + "/disable", undefined, k.etag));
            await go(location.hash, `Disabled the key ${cell(k.key_id)}.`);
          }),
        button("Delete", async () => {
          if (!await confirmAction(`Delete the key ${cell(k.key_id)}? Programs using its key file stop getting tokens.`, "Delete")) return;
          await unchanged(k, () => admin.del(kpath(k), k.etag));
          await go(location.hash, `Deleted the key ${cell(k.key_id)}.`);
        }, "danger"))],
    ], keys, "No keys."),
    form,
    uploadKeyForm(path));
}

// uploadKeyForm registers a public key or certificate the user holds the
// private key of (POST …/keys/upload, as keyward keys upload does): PEM
// pasted, or read from a file chosen into the same box. A PEM that holds a
// private key is refused here, before anything is sent: the private key
// stays with its owner. The server checks the rest (a PUBLIC KEY, RSA
// PUBLIC KEY or CERTIFICATE block; RSA of 2048 to 8192 bits or EC P-256;
// an unexpired certificate, whose notAfter caps the expiry; not a key the
// account has already); its refusal is shown as it is, and the form keeps
// what was given.
function uploadKeyForm(path) {
  const pem = h("textarea", { id: "upload-pem", rows: 6, autocomplete: "off", spellcheck: false, required: true,
    placeholder: "-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----" });
  const file = h("input", { id: "upload-file", type: "file", accept: ".pem,.pub,.crt,.cer,application/x-pem-file,text/plain" });
  file.addEventListener("change", act(file, async () => {
    const f = file.files[0];
    if (!f) return;
    if (f.size > MAX_KEY_FILE) throw new Error("That file is too large to be a PEM public key or certificate.");
    pem.value = await f.text();
  }));
  const [daysLabel, days] = formInput("Expires in days (empty: never, or the certificate's expiry)", "upload-days", { type: "number" });
  const submit = h("button", { type: "submit" }, "Upload key");
  const form = h("form", { class: "grid", id: "upload-key-form" },
    h("label", { for: file.id }, "PEM file"), file,
    h("label", { for: pem.id }, "or paste it"), pem,
    daysLabel, days, h("span"), submit);
  form.addEventListener("submit", act(submit, async () => {
    // As keyward keys upload checks before sending: any PEM type ending
    // in PRIVATE KEY (X9.42 DH PRIVATE KEY too), as the server refuses.
    if (pem.value.includes("PRIVATE KEY-----")) {
      throw new Error("This holds a private key: nothing was sent. Upload only the public key (openssl pkey -in key.pem -pubout) "
        + "or the certificate, and keep the private key to yourself.");
    }
    const body = { public_key_pem: pem.value };
    if (days.value !== "") body.expires_in_seconds = wholeNumber(days.value, "The days until the key expires") * 86400;
    const k = await admin.post(path + "/keys/upload", body);
    await go(location.hash, `Uploaded the ${k.algorithm} key ${cell(k.key_id)}` + (k.expires_at ? `, which expires ${fmtTime(k.expires_at)}.` : "."));
  }));
  return h("details", { class: "box", id: "upload-key" }, h("summary", {}, "Upload a public key"),
    h("p", {}, "Register a public key or X.509 certificate whose private key you hold: RSA of 2048 to 8192 bits (RS256) "
      + "or EC P-256 (ES256). A certificate is also what self_signed_tls_client_auth matches."),
    form);
}

// secretsSection lists the account's secrets and creates one; disabling,
// enabling or deleting one sends If-Match with the secret's etag from the
// list (unchangedItem), which its use does not change (nor last_used_at).
function secretsSection(path, secrets) {
  const shown = h("div");
  const holder = h("div");
  const spath = (s) => path + "/secrets/" + seg(s.secret_id);
  const unchanged = (s, send) => unchangedItem(`the secret ${cell(s.secret_id)}`, () => refresh(), send);
  // refresh redraws just the list, so a new secret shown above stays.
  const refresh = async (notice) => {
    render((await admin.get(path + "/secrets")).secrets);
    if (notice) showNotice(notice);
  };
  const render = (list) => holder.replaceChildren(table([
    ["Secret ID", (s) => h("code", {}, cell(s.secret_id))],
    ["Hint", (s) => cell(s.hint)],
    ["State", (s) => state(s.disabled)],
    ["Created", (s) => fmtTime(s.created_at)],
    ["Expires", (s) => fmtTime(s.expires_at)],
    ["Last used", (s) => fmtTime(s.last_used_at)],
    ["", (s) => h("span", { class: "actions" },
      s.disabled
        ? button("Enable", async () => {
          await unchanged(s, () => admin.post(spath(s) + "/enable", undefined, s.etag));
          await refresh(`Enabled the secret ${cell(s.secret_id)}.`);
        })
        : button("Disable", async () => {
          await unchanged(s, () => admin.post(spath(s) + "/disable", undefined, s.etag));
          await refresh(`Disabled the secret ${cell(s.secret_id)}.`);
        }),
      button("Delete", async () => {
        if (!await confirmAction(`Delete the secret ${cell(s.secret_id)}? Programs using it stop getting tokens.`, "Delete")) return;
        await unchanged(s, () => admin.del(spath(s), s.etag));
        await refresh(`Deleted the secret ${cell(s.secret_id)}.`);
      }, "danger"))],
  ], list, "No client secrets."));
  render(secrets);
  const create = button("Create secret", async () => {
    const s = await admin.post(path + "/secrets", {});
    if (!shown.isConnected) {
      // The page was left, shown again or signed out of before the answer
      // came: the secret has nowhere to be shown, and the server keeps
      // only a hash of it.
      throw new Error(`Created the client secret ${cell(s.secret_id)} of ${cell(s.client_id)}, but its page was left, shown again or signed out of before the server answered: `
        + "the secret was not shown and cannot be shown again. Delete it on the account's page, and create another there.");
    }
    // Shown this once: the server keeps only a hash of it. It is the
    // input's value, not its value attribute, so it is not in the page's
    // markup (a serialized DOM; Firefox's Save Page still writes fields'
    // values), and autocomplete off keeps the browser from saving it to
    // restore the form.
    const value = h("input", { readonly: true, id: "new-secret", class: "secret", autocomplete: "off", spellcheck: false, "aria-label": "New client secret" });
    value.value = s.client_secret;
    shown.replaceChildren(h("div", { class: "box once" },
      h("p", {}, `The new client secret of client ${cell(s.client_id)}. It is shown this once; copy it now.`),
      value,
      h("button", { type: "button", onclick: () => shown.replaceChildren() }, "I have copied it")));
    value.select();
    await refresh();
  });
  return h("section", {}, h("h2", {}, "Client secrets"), shown, holder, h("div", { class: "actions" }, create));
}

// --- APIs ---

async function apisView() {
  const res = await admin.get("/apis");
  return h("section", {}, h("h1", {}, "APIs"),
    createAPIForm(),
    table([
      ["Name", (a) => h("a", { href: "#/apis/" + seg(a.name) }, cell(a.name))],
      ["Identifier (audience)", (a) => h("code", {}, cell(a.identifier))],
      ["Scopes", (a) => list(a.scopes)],
      ["Token format", (a) => a.token_format],
    ], res.apis, "No APIs."));
}

// formatSelect chooses an API's token format (storage.TokenJWT or
// TokenOpaque).
function formatSelect(id, value) {
  const s = h("select", { id },
    h("option", { value: "jwt" }, "JWT (verified by the API itself)"), h("option", { value: "opaque" }, "opaque (verified by introspection)"));
  s.value = value;
  return s;
}

function createAPIForm() {
  const format = formatSelect("f-api-token_format", "jwt");
  const submit = h("button", { type: "submit" }, "Create API");
  const form = h("form", { class: "grid" },
    ...formInput("Name", "api-name", { required: true, placeholder: "orders" }),
    ...formInput("Identifier (the tokens' audience, a URI)", "api-identifier", { required: true, placeholder: "https://orders.internal" }),
    ...formInput("Scopes (space-separated)", "api-scopes", { required: true, placeholder: "orders.read orders.write" }),
    h("label", { for: format.id }, "Token format"), format,
    ...formInput("Description", "api-description"),
    h("span"), submit);
  form.addEventListener("submit", act(submit, async () => {
    const f = new FormData(form);
    const a = await admin.post("/apis", {
      name: f.get("api-name").trim(), identifier: f.get("api-identifier").trim(), scopes: words(f.get("api-scopes")),
      token_format: format.value, description: f.get("api-description"),
    });
    await go("#/apis/" + seg(a.name), `Created the API ${cell(a.name)}.`);
  }));
  return h("details", { class: "box", id: "create-api" }, h("summary", {}, "Create an API"), form);
}

async function apiView(name) {
  const path = "/apis/" + seg(name);
  const [a, etag] = await admin.getTagged(path);
  // The admin API refuses to delete an API whose scopes are still granted,
  // naming who holds them, and the built-in API. Delete is made only to
  // the API as the page shows it: If-Match: etag, as the edit form sends,
  // and a 412 shows the page again with the API as it is now.
  const del = button("Delete", async () => {
    if (!await confirmAction(`Delete the API ${cell(a.name)}? Its scopes can no longer be requested.`, "Delete")) return;
    await unchangedItem(`the API ${cell(a.name)}`, () => go(location.hash), () => admin.del(path, etag), "The page");
    await go("#/apis", `Deleted the API ${cell(a.name)}.`);
  }, "danger");
  const introspectors = a.introspectors.length
    ? a.introspectors.flatMap((id, i) => [i ? " " : null, h("a", { href: "#/accounts/" + seg(id) }, cell(id))]) : "—";
  return h("section", {},
    h("p", {}, h("a", { href: "#/apis" }, "← APIs")),
    h("h1", {}, cell(a.name)),
    fields([
      ["Identifier (audience)", h("code", {}, cell(a.identifier))],
      ["Description", a.description ? cell(a.description) : "—"],
      ["Scopes", list(a.scopes)],
      ["Token format", a.token_format],
      ["Introspectors", introspectors],
      ["Created", fmtTime(a.created_at)],
    ]),
    h("div", { class: "actions" }, del),
    editAPIForm(a, path, etag));
}

// editAPIForm changes an API's description, token format, introspectors
// and scopes with the admin API's PATCH, sending only what differs from a
// (the scopes when their list or its order differs); its identifier does
// not change. Introspectors may be named by email or client ID; the server
// finds them (and refuses an account that does not exist, the form keeping
// what was typed). The server refuses to remove a scope still granted or
// to add another API's, saying why. The PATCH carries If-Match: etag, so a
// change another administrator made since the page showed the API is
// refused (412), not overwritten, and Reload the API shows it as it is now
// (ifUnchanged).
function editAPIForm(a, path, etag) {
  const [descLabel, desc] = formInput("Description", "edit-api-description", { value: a.description });
  const format = formatSelect("f-edit-api-token_format", a.token_format);
  const [introLabel, intro] = formInput("Introspectors (accounts' emails or client IDs, space-separated)", "edit-api-introspectors",
    { value: a.introspectors.join(" ") });
  const [scopesLabel, scopes] = formInput("Scopes (space-separated, in order)", "edit-api-scopes", { value: a.scopes.join(" ") });
  const submit = h("button", { type: "submit" }, "Save changes");
  const { reload, patch } = ifUnchanged(`the API ${cell(a.name)}`, "Reload the API", `Reloaded the API ${cell(a.name)} as it is now.`);
  const form = h("form", { class: "grid" },
    descLabel, desc, h("label", { for: format.id }, "Token format"), format, introLabel, intro, scopesLabel, scopes,
    h("span"), h("span", { class: "actions" }, submit, reload));
  const what = { description: "description", token_format: "token format", introspectors: "introspectors", scopes: "scopes" };
  form.addEventListener("submit", act(submit, async () => {
    const up = {};
    if (desc.value !== a.description) up.description = desc.value;
    if (format.value !== a.token_format) up.token_format = format.value;
    const is = words(intro.value);
    if (!sameSet(is, a.introspectors)) up.introspectors = is;
    const sc = words(scopes.value);
    if (sc.join(" ") !== a.scopes.join(" ")) up.scopes = sc;
    const changed = Object.keys(up);
    if (changed.length === 0) {
      showNotice("Nothing to save: the form is as the API is.");
      return;
    }
    await patch(path, up, etag);
    await go(location.hash, `Updated the ${andList(changed.map((k) => what[k]))} of the API ${cell(a.name)}.`);
  }));
  return h("details", { class: "box", id: "edit-api" }, h("summary", {}, "Edit the API"), form);
}

// --- session ---

let clock = null;

// showSession names the administrator signed in, as the admin API's
// GET /v1/whoami did, and when the token expires, kept up to date.
function showSession(s) {
  const { me } = s;
  const title = `${cell(me.display_name || me.email)}, client ID ${cell(me.client_id)}; the token's scopes: ${(me.token.scopes ?? []).map(cell).join(" ")}`;
  const show = () => {
    const left = s.expiresAt - Date.now();
    const when = left < 60000 ? "in less than a minute" : `in ${Math.round(left / 60000)} min`;
    $("who").replaceChildren("Signed in as ", h("a", { href: "#/accounts/" + seg(me.client_id), title }, cell(me.email)),
      ` · token expires ${fmtTime(s.expiresAt)} (${when})`);
  };
  show();
  clearInterval(clock);
  clock = setInterval(() => { if (currentSession() === s) show(); }, 30000);
}

onSessionChange((s, reason, notice) => {
  $("signin").hidden = !!s;
  $("view").hidden = $("nav").hidden = $("session").hidden = !s;
  // The sign-in forms let go of what they were given, signed in or out: a
  // pasted token or a chosen key file (its private key readable by the
  // page's code) is not kept in a hidden form for the whole session.
  $("keyfile").value = "";
  $("token").value = "";
  if (s) {
    clearAlert();
    showSession(s);
    route();
    return;
  }
  clearInterval(clock);
  closeConfirm(); // declined: it would act with no session, or another's
  $("view").replaceChildren(); // leave nothing readable behind
  $("who").replaceChildren();
  if (reason && !notice) showError(reason); else showNotice(reason ?? "Signed out.");
});

function setUp() {
  const kfSubmit = $("keyfile-form").querySelector("button");
  $("keyfile-form").addEventListener("submit", act(kfSubmit, async () => {
    const file = $("keyfile").files[0];
    if (!file) throw new Error("Choose a key file first.");
    if (file.size > MAX_KEY_FILE) throw new Error("That file is too large to be a key file.");
    const left = beginSignIn(); // before the file is read
    await withKeyFile(await file.text(), left);
  }));
  const tokSubmit = $("token-form").querySelector("button");
  $("token-form").addEventListener("submit", act(tokSubmit, () => withToken($("token").value)));
  $("signout").addEventListener("click", act($("signout"), endSession));
  window.addEventListener("hashchange", () => {
    clearAlert();
    if (pendingNotice) showNotice(pendingNotice);
    pendingNotice = null;
    route();
  });
  // Leaving the page signs out, as reloading or closing it does, even
  // when the browser keeps the page to come Back to (the back/forward
  // cache, which index.html's no-store only asks it not to): the token
  // and the view are let go of before the page is kept, and a page shown
  // again from that cache is signed out all the same. The token is not
  // revoked: there is no waiting for an answer while the page is left.
  // A sign-in still under way as the page is left does not complete, and
  // the sign-in form lets go of the key file and the pasted token too: a
  // signed-out page keeps them there (a sign-in clears them as it ends).
  const leftPage = "Signed out: the page was left. Sign in again.";
  const leave = () => {
    $("keyfile").value = "";
    $("token").value = "";
    leavePage(leftPage);
  };
  window.addEventListener("pagehide", (e) => { if (e.persisted) leave(); });
  window.addEventListener("pageshow", (e) => { if (e.persisted) leave(); });
  window.addEventListener("error", (e) => showError("The console failed: " + e.message));
  window.addEventListener("unhandledrejection", (e) => showError("The console failed: " + (e.reason?.message ?? e.reason)));
  $("signin").hidden = false;
}

setUp();
