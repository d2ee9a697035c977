// The audit log, newest first. The admin API pages forwards only (events
// after a sequence number, oldest first), so the view finds the newest
// sequence number by probing (a doubling search, then a bisection: about
// 2·log2(events) requests of one event each) and then reads windows of
// sequence numbers backwards from it.

import { admin, seg } from "./api.js";
import { h, table, fmtTime, button } from "./dom.js";

const PAGE = 50;

// firstAfter returns the sequence number of the first event after seq, or
// null if there is none.
async function firstAfter(seq) {
  const res = await admin.get(`/audit?after=${seq}&limit=1`);
  return res.events.length ? res.events[0].seq : null;
}

// bounds returns the first and last sequence numbers, or null for an
// empty log.
async function bounds() {
  const first = await firstAfter(0);
  if (first === null) return null;
  let lo = first; // an event exists at lo
  let step = 1;
  for (;;) {
    const s = await firstAfter(lo + step - 1);
    if (s === null) break;
    lo = s;
    step *= 2;
  }
  let hi = lo + step - 1; // no event after hi
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    const s = await firstAfter(mid - 1);
    if (s === null) hi = mid - 1; else lo = s;
  }
  return { first, last: lo };
}

const details = (data) => Object.keys(data ?? {}).sort().map((k) => `${k}=${data[k]}`).join(" ");

// auditView shows the newest page of the audit log, with Older and Newer.
export async function auditView() {
  const holder = h("div");
  let b = await bounds();
  let top = b?.last; // the newest sequence number on the page
  const show = async () => {
    if (b === null) {
      holder.replaceChildren(h("p", { class: "empty" }, "The audit log is empty."));
      return;
    }
    const after = Math.max(b.first - 1, top - PAGE);
    const res = await admin.get(`/audit?after=${after}&limit=${PAGE}`);
    const events = res.events.filter((e) => e.seq <= top).reverse();
    const newer = button("Newer", async () => { top = Math.min(b.last, top + PAGE); await show(); });
    newer.disabled = top >= b.last;
    const older = button("Older", async () => { top = Math.max(b.first, top - PAGE); await show(); });
    older.disabled = top - PAGE < b.first;
    holder.replaceChildren(
      table([
        ["Seq", (e) => String(e.seq)],
        ["Time", (e) => fmtTime(e.time)],
        ["Action", (e) => e.action],
        ["Outcome", (e) => h("span", { class: e.outcome === "success" ? "state on" : "state off" }, e.outcome)],
        ["Account", (e) => (e.account_id ? h("a", { href: "#/accounts/" + seg(e.account_id) }, e.account_id) : "—")],
        ["Actor", (e) => e.actor || "—"],
        ["Source", (e) => e.source || "—"],
        ["Details", (e) => details(e.data)],
      ], events, "No events in this range (they may have been pruned)."),
      h("div", { class: "pager" }, newer, older));
  };
  const latest = button("Show the latest", async () => { b = await bounds(); top = b?.last; await show(); });
  await show();
  return h("section", {}, h("h1", {}, "Audit log"), h("p", {}, "Newest first. ", latest), holder);
}
