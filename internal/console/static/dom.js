// Building the page: elements are made with createElement and text is
// always set with textContent, never parsed as HTML.

import { cell } from "./goquote.js";

// h makes an element. attrs sets properties (class → className, on* →
// event listeners); false leaves an attribute out, and turns off a boolean
// property that is on by default (spellcheck). children are nodes or
// strings (text), null is skipped.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (v === false) {
      if (typeof el[k] === "boolean") el[k] = false;
      continue;
    }
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "data") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// formInput makes a labelled input of a form, named name, with the id
// "f-" + name; returns [label, input].
export function formInput(label, name, attrs = {}) {
  const id = "f-" + name;
  return [h("label", { for: id }, label), h("input", { id, name, autocomplete: "off", ...attrs })];
}

// list shows a list of names on one line, each as cell shows it, or a
// dash for none.
export const list = (xs) => (xs && xs.length ? xs.map(cell).join(" ") : "—");

// words splits a list typed with spaces or commas.
export const words = (text) => text.split(/[\s,]+/).filter(Boolean);

// fmtTime shows an RFC 3339 time (or milliseconds) in UTC, to the second,
// on one line.
export function fmtTime(t) {
  if (t === undefined || t === null || t === "") return "—";
  const d = new Date(t);
  if (isNaN(d)) return String(t);
  return d.toISOString().slice(0, 19).replace("T", "\u00a0") + "\u00a0UTC";
}

// table makes a table of rows; columns are [heading, row → cell content].
export function table(columns, rows, empty) {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, columns.map(([head]) => h("th", {}, head)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(r))))))));
}

// fields makes a definition list of [label, value] pairs.
export function fields(pairs) {
  return h("dl", { class: "fields" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// state shows enabled or disabled.
export function state(disabled) {
  return h("span", { class: disabled ? "state off" : "state on" }, disabled ? "disabled" : "enabled");
}

const alertBox = () => document.getElementById("alert");

// showError puts a message in the alert area; the admin API's descriptions
// are written for people and shown as they are.
export function showError(msg) {
  const box = alertBox();
  box.className = "error";
  box.textContent = msg;
  box.hidden = false;
}

// showNotice puts a neutral message in the alert area.
export function showNotice(msg) {
  const box = alertBox();
  box.className = "notice";
  box.textContent = msg;
  box.hidden = false;
}

// clearAlert empties the alert area.
export function clearAlert() {
  alertBox().hidden = true;
  alertBox().textContent = "";
}

// declineOpen declines the confirmation open, if any (null when none is).
let declineOpen = null;

// confirmAction asks in a modal dialog; it resolves to true on Confirm,
// and to false on Cancel, Escape or closeConfirm, once, with its own
// answer. The dialog's close event comes in a later task than the close:
// one that comes when another confirmation has opened since is not that
// one's, and it is not taken as its answer.
export function confirmAction(question, action = "Confirm") {
  declineOpen?.(); // one asked before and not answered: declined
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = question;
  const ok = document.getElementById("confirm-ok");
  ok.textContent = action;
  return new Promise((resolve) => {
    let answered = false;
    const answer = (yes) => {
      if (answered) return;
      answered = true;
      if (declineOpen === decline) declineOpen = null;
      resolve(yes);
      if (dlg.open) dlg.close();
    };
    const decline = () => answer(false);
    declineOpen = decline;
    ok.onclick = () => answer(true);
    document.getElementById("confirm-cancel").onclick = decline;
    dlg.oncancel = decline; // Escape
    // Closed otherwise (Escape the browser does not announce by a cancel
    // event): a close event while the dialog is open again is another
    // confirmation's.
    dlg.onclose = () => { if (!dlg.open) decline(); };
    dlg.showModal();
  });
}

// closeConfirm declines the confirmation open, if any, and closes it: the
// console signed out, and what it asked about is of a session that has
// ended.
export function closeConfirm() {
  declineOpen?.();
}

// downloadURLs are the object URLs of the files download offered and
// has not revoked yet.
const downloadURLs = new Set();

// revokeDownload revokes an object URL download made.
function revokeDownload(url) {
  if (downloadURLs.delete(url)) URL.revokeObjectURL(url);
}

// download saves text as a file the browser offers to the user. The
// object URL that holds the text (a key file: its private key) is revoked
// 10 s later, when the browser has read it, or as the page is hidden,
// whichever comes first: timers do not run while the browser keeps the
// page in its back/forward cache.
export function download(filename, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  downloadURLs.add(url);
  const a = h("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => revokeDownload(url), 10000);
}

window.addEventListener("pagehide", () => downloadURLs.forEach(revokeDownload));

// running holds the actions act is running, each with the address of the
// page it began on.
const running = new Set();

// pageLeft reports whether the page an action now running began on has
// been left (the address changed since it began): the answer came after
// the user went to another page, which the action's outcome must not
// reload or leave. The actions do not say which of them asks, so while
// several run it answers yes if any of them began elsewhere.
export const pageLeft = () => [...running].some((r) => r.from !== location.hash);

// act runs an action from a button or form: it disables the control while
// the action runs and shows the error it ends with, if any. It keeps the
// page's address while the action runs, for pageLeft.
export function act(control, fn) {
  return async (ev) => {
    ev?.preventDefault();
    clearAlert();
    control.disabled = true;
    const run = { from: location.hash };
    running.add(run);
    try {
      await fn();
    } catch (e) {
      showError(e.message);
    } finally {
      running.delete(run);
      control.disabled = false;
    }
  };
}

// button makes a button that runs fn through act.
export function button(label, fn, cls) {
  const b = h("button", { type: "button", class: cls }, label);
  b.addEventListener("click", act(b, fn));
  return b;
}

// pager shows a paged list (the admin API's page_token paging) in holder:
// load(query, pageToken) fetches a page, draw(answer, query, pageToken)
// makes its content, and Previous page and Next page follow. The query
// and the pages shown so far become the pager's only once the server has
// answered, and only the latest request's answer is shown: a refused or
// failed page leaves the list, and where Previous and Next lead, as they
// were. show(query) shows the first page of a query; again() shows the
// current page again.
export function pager(holder, load, draw) {
  let query = null, pages = [""], latest = 0;
  const show = async (q, p) => {
    const n = ++latest;
    const res = await load(q, p[p.length - 1]);
    if (n !== latest) return false;
    query = q;
    pages = p;
    const prev = button("Previous page", () => show(query, pages.slice(0, -1)));
    prev.disabled = pages.length === 1;
    const next = button("Next page", () => show(query, [...pages, res.next_page_token]));
    next.disabled = !res.next_page_token;
    holder.replaceChildren(draw(res, q, p[p.length - 1]), h("div", { class: "pager" }, prev, next));
    return true;
  };
  return { show: (q) => show(q, [""]), again: () => show(query, pages) };
}

// unchangedItem runs send, a change of a key or secret (named what, its
// name quoted with cell when unprintable, as the caller gives it) that
// carries If-Match: the "etag" its list gave it, or of an account or
// organization with the ETag the page got with it, so the change is made
// only to what as the page shows it. If someone changed it since (the
// server refuses with 412), reload shows where (the list, or the page)
// again as it is now, and the server's description says what was not
// done, in an error of status 412.
export async function unchangedItem(what, reload, send, where = "The list") {
  try {
    await send();
  } catch (e) {
    if (e.status !== 412) throw e;
    await reload();
    throw Object.assign(new Error(`${e.message} ${where} now shows ${what} as it is.`), { status: 412 });
  }
}
