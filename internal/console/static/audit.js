// The audit log, newest first: the admin API's newest-first pages
// (order=desc), each older page ending before the last one's oldest event.

import { admin, seg } from "./api.js";
import { h, table, fmtTime, button } from "./dom.js";

const PAGE = 50;

const details = (data) => Object.keys(data ?? {}).sort().map((k) => `${k}=${data[k]}`).join(" ");

// auditView shows the newest page of the audit log, with Older and Newer.
export async function auditView() {
  const holder = h("div");
  let pages = [""]; // the before of each page shown so far: "" for the newest
  const show = async () => {
    const q = new URLSearchParams({ order: "desc", limit: String(PAGE) });
    const before = pages[pages.length - 1];
    if (before) q.set("before", before);
    const res = await admin.get("/audit?" + q);
    const newer = button("Newer", async () => { pages.pop(); await show(); });
    newer.disabled = pages.length === 1;
    const older = button("Older", async () => { pages.push(res.next_page_token); await show(); });
    older.disabled = !res.next_page_token;
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
      ], res.events, before ? "No older events (they may have been pruned)." : "The audit log is empty."),
      h("div", { class: "pager" }, newer, older));
  };
  const latest = button("Show the latest", async () => { pages = [""]; await show(); });
  await show();
  return h("section", {}, h("h1", {}, "Audit log"), h("p", {}, "Newest first. ", latest), holder);
}
