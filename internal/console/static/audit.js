// The audit log, newest first: the admin API's newest-first pages
// (order=desc), each older page ending before the last one's oldest event,
// filtered as GET /v1/audit filters. The filter is kept in the address
// (#/audit?action=…&outcome=…), so that Back goes to the one before and a
// link may name one; the pages shown so far are kept by the view.

import { request, seg } from "./api.js";
import { h, table, fmtTime, button, act } from "./dom.js";
import { printable, quote, cell } from "./goquote.js";

const PAGE = 50;

// FILTERS are the query parameters of GET /v1/audit the page filters by.
const FILTERS = ["action", "account", "outcome", "since", "until"];

// details shows an event's data as keyward audit list does (details and
// cell in cmd/keyward): key=value, sorted, a value quoted (as Go's
// strconv.Quote does) when it has a space or anything unprintable. The
// data holds what callers sent, such as the client_id of a refused token
// request, anyone's to choose: shown raw, a value with spaces could pass
// for more pairs ("client_id=x error=…"), and a bidirectional override
// could turn the rest of the cell around.
const details = (data) => Object.keys(data ?? {}).sort().map((k) => {
  const v = String(data[k]);
  return `${cell(k)}=${v.includes(" ") || !printable(v) ? quote(v) : v}`;
}).join(" ");

// eventDetails is details of an event's data, or, for data the admin API
// could not read (data_unreadable: the database was changed), what is
// stored, quoted, as keyward audit list shows it.
const eventDetails = (e) => (e.data_unreadable ? "data unreadable: " + quote(e.data_raw ?? "") : details(e.data));

// auditHash is the address of the audit log filtered by filter (an
// object, FormData or URLSearchParams): its FILTERS that are not empty.
export function auditHash(filter) {
  const q = new URLSearchParams();
  for (const [k, v] of new URLSearchParams(filter)) if (FILTERS.includes(k) && v.trim() !== "") q.set(k, v.trim());
  return q.size ? "#/audit?" + q : "#/audit";
}

// filterOf reads the filter of an address auditHash made.
function filterOf(hash) {
  const i = hash.indexOf("?");
  return new URLSearchParams(i < 0 ? "" : hash.slice(i + 1));
}

// pinned is filter f with since and until as the server read them for
// the newest page (res.since, res.until: a duration ago such as 1h, by
// its clock), exactly: the older pages are sent those times, not the
// durations, which the server read again at each page, the bound moving
// on, so that an older page left out events the newest page's listing
// had. A bound the server does not say (one RFC 3339 cannot write, before
// year 0) is sent as given.
function pinned(f, res) {
  const out = new URLSearchParams(f);
  for (const name of ["since", "until"]) if (out.has(name) && typeof res?.[name] === "string") out.set(name, res[name]);
  return out;
}

// field keeps a label with its control when the filter form wraps.
const field = (label, control) => h("span", { class: "field" }, h("label", { for: control.id }, label), control);

// filterInput makes a labelled input of the filter form.
function filterInput(name, label, value, attrs = {}) {
  return field(label, h("input", { id: "audit-" + name, name, value, autocomplete: "off", spellcheck: false, ...attrs }));
}

// auditView shows the newest page of the audit log, filtered as the
// address says, with the filter form, Older and Newer.
export async function auditView() {
  const shown = filterOf(auditHash(filterOf(location.hash)));
  const holder = h("div");
  // show lists a page (p holds the before of each page shown so far, ""
  // for the newest) filtered by f; only once the server answered does the
  // view take them as its own, and only the latest request's answer. It
  // reports whether it was the latest.
  // sent is the filter the older pages of the listing shown are sent
  // (pinned).
  let filter = shown, pages = [""], latestRequest = 0, sent = shown;
  const show = async (f, p) => {
    const q = new URLSearchParams(p.length > 1 ? sent : f);
    q.set("order", "desc");
    q.set("limit", String(PAGE));
    const before = p[p.length - 1];
    if (before) q.set("before", before);
    const n = ++latestRequest;
    const { data: res } = await request("GET", "/v1/audit?" + q);
    if (n !== latestRequest) return false;
    if (p.length === 1) sent = pinned(f, res);
    filter = f;
    pages = p;
    const newer = button("Newer", () => show(filter, pages.slice(0, -1)));
    newer.disabled = pages.length === 1;
    const older = button("Older", () => show(filter, [...pages, res.next_page_token]));
    older.disabled = !res.next_page_token;
    const empty = before ? "No older events (they may have been pruned)." : f.size ? "No events match the filter." : "The audit log is empty.";
    holder.replaceChildren(
      table([
        ["Seq", (e) => String(e.seq)],
        ["Time", (e) => (e.time_unreadable ? "time unreadable: " + quote(e.time_raw ?? "") : fmtTime(e.time))],
        ["Action", (e) => cell(e.action)],
        ["Outcome", (e) => h("span", { class: e.outcome === "success" ? "state on" : "state off" }, cell(e.outcome))],
        ["Account", (e) => (e.account_id ? h("a", { href: "#/accounts/" + seg(e.account_id) }, cell(e.account_id)) : "—")],
        ["Actor", (e) => (e.actor ? cell(e.actor) : "—")],
        ["Source", (e) => (e.source ? cell(e.source) : "—")],
        ["Details", (e) => (e.action === "token.issued" && e.data?.token_id
          ? [details(e.data), " ", h("a", { href: "#/tokens/" + seg(e.data.token_id) }, "Revoke…")] : eventDetails(e))],
      ], res.events, empty),
      h("div", { class: "pager" }, newer, older));
    return true;
  };

  const outcome = h("select", { id: "audit-outcome", name: "outcome" },
    h("option", { value: "" }, "any"), h("option", { value: "success" }, "success"), h("option", { value: "failure" }, "failure"));
  outcome.value = shown.get("outcome") ?? "";
  const apply = h("button", { type: "submit" }, "Filter");
  const form = h("form", { class: "inline filters", id: "audit-filter" },
    filterInput("action", "Action", shown.get("action"), { type: "search", placeholder: "token.refused" }),
    filterInput("account", "Account", shown.get("account"), { type: "search", placeholder: "email or client ID" }),
    field("Outcome", outcome),
    filterInput("since", "Since", shown.get("since"), { placeholder: "24h or an RFC 3339 time" }),
    filterInput("until", "Until", shown.get("until"), { placeholder: "a time or a duration ago" }),
    apply, h("button", { type: "button", onclick: () => {
      for (const el of form.elements) if (el.name) el.value = "";
      form.requestSubmit(apply);
    } }, "Clear"));
  // A refused filter (an unknown account, a time the server cannot read)
  // shows the admin API's description and leaves the form as typed and the
  // list and address as they were. The address changes only if the page
  // is still this one.
  form.addEventListener("submit", act(apply, async () => {
    const from = location.hash, next = auditHash(new FormData(form));
    if (await show(filterOf(next), [""]) && location.hash === from && from !== next) history.pushState(null, "", next);
  }));
  const latest = button("Show the latest", () => show(filter, [""]));
  await show(shown, [""]);
  return h("section", {}, h("h1", {}, "Audit log"), form, h("p", {}, "Newest first. ", latest), holder);
}
