// Organizations and domain-wide delegation, as keyward org, users and
// delegation do: an organization's blocked scopes, its projects, its user
// directory and the grants that let service accounts act for its users.

import { admin, request, seg, ApiError, currentSession } from "./api.js";
import { h, table, fields, fmtTime, button, act, confirmAction, showNotice, pager, list, words, unchangedItem, formInput } from "./dom.js";
import { quote, cell } from "./goquote.js";
import { decodeUsers, parseUsers, importBatches, toLower, IMPORT_BATCH, MAX_IMPORT_USERS, MAX_IMPORT_BYTES } from "./userimport.js";

const PAGE = 50;

// input is formInput for domains, scopes, client IDs and emails: not
// spell-checked.
const input = (label, name, attrs = {}) => formInput(label, name, { spellcheck: false, ...attrs });

// orgsView lists the organizations; go(hash, notice) shows a view with a
// notice.
export async function orgsView(go) {
  const res = await admin.get("/orgs");
  return h("section", {}, h("h1", {}, "Organizations"),
    h("p", {}, "Domain-wide delegation: a service account granted scopes in an organization may get tokens that act for "
      + "the users of its directory."),
    createOrgForm(go),
    table([
      ["Domain", (o) => h("a", { href: "#/orgs/" + seg(o.domain) }, cell(o.domain))],
      ["Blocked scopes", (o) => list(o.blocked_scopes)],
      ["Created", (o) => fmtTime(o.created_at)],
    ], res.orgs, "No organizations."));
}

function createOrgForm(go) {
  const [domainLabel, domain] = input("Domain", "org-domain", { required: true, placeholder: "example.com" });
  const [blockedLabel, blocked] = input("Blocked scopes (space-separated)", "org-blocked", { placeholder: "orders.write" });
  const submit = h("button", { type: "submit" }, "Create organization");
  const form = h("form", { class: "grid" }, domainLabel, domain, blockedLabel, blocked, h("span"), submit);
  form.addEventListener("submit", act(submit, async () => {
    const body = { domain: domain.value.trim() };
    const bs = words(blocked.value);
    if (bs.length) body.blocked_scopes = bs;
    const o = await admin.post("/orgs", body);
    await go("#/orgs/" + seg(o.domain), `Created the organization ${cell(o.domain)}.`);
  }));
  return h("details", { class: "box", id: "create-org" }, h("summary", {}, "Create an organization"), form);
}

// orgView shows an organization: its blocked scopes, projects, delegation
// grants and users.
//
// Delete deletes the organization only as the page shows it: the DELETE
// sends If-Match: etag, o's ETag, and the server refuses it (412) if
// someone changed the organization (its blocked scopes or its projects)
// since; the refusal shows the organization as it is now, with the
// server's description.
export async function orgView(domain, go) {
  const path = "/orgs/" + seg(domain);
  const [[o, etag], grants, all] = await Promise.all([admin.getTagged(path), admin.get(path + "/delegations"), admin.get("/orgs")]);
  const users = await usersSection(o, path);
  const del = button("Delete", async () => {
    if (!await confirmAction(`Delete the organization ${cell(o.domain)} with its users, project placements and delegation grants? `
      + "Tokens that act for its users stop working at once. This cannot be undone.", "Delete")) return;
    await unchangedItem(cell(o.domain), () => go(location.hash), () => admin.del(path, etag), "The page");
    await go("#/orgs", `Deleted the organization ${cell(o.domain)}.`);
  }, "danger");
  return h("section", {},
    h("p", {}, h("a", { href: "#/orgs" }, "← Organizations")),
    h("h1", {}, cell(o.domain)),
    fields([
      ["Blocked scopes", list(o.blocked_scopes)],
      ["Created", fmtTime(o.created_at)],
    ]),
    h("div", { class: "actions" }, del),
    blockedForm(o, etag, path, go),
    projectsSection(o, etag, path, all.orgs.map((x) => x.domain).filter((d) => d !== o.domain), go),
    delegationsSection(o, path, grants.delegations, go),
    users);
}

// blockedForm replaces the scopes the organization never allows for
// delegated access (PATCH /v1/orgs/{domain}), only in the organization as
// the page shows it: the PATCH sends If-Match: etag, o's ETag. If someone
// changed the organization since (its blocked scopes or its projects),
// the server refuses it (412): nothing is saved, the page shows the
// organization as it is now, and the error gives the server's description
// and the scopes that were entered, to enter again.
function blockedForm(o, etag, path, go) {
  const [label, scopes] = input("Blocked scopes (space-separated)", "org-edit-blocked", { value: o.blocked_scopes.join(" ") });
  const submit = h("button", { type: "submit" }, "Save blocked scopes");
  const form = h("form", { class: "grid" }, label, scopes, h("span"), submit);
  form.addEventListener("submit", act(submit, async () => {
    const bs = words(scopes.value);
    let saved;
    try {
      saved = await admin.patch(path, { blocked_scopes: bs }, etag);
    } catch (e) {
      if (e.status !== 412) throw e;
      await go(location.hash);
      throw new Error(`${e.message} The page now shows ${cell(o.domain)} as it is; the blocked scopes entered were: `
        + (bs.length ? list(bs) : "none") + ".");
    }
    // The notice names the scopes as saved (each once), each with cell.
    const now = saved.blocked_scopes ?? [];
    await go(location.hash, now.length ? `${cell(o.domain)} now blocks ${list(now)} for delegated access.` : `${cell(o.domain)} now blocks no scopes.`);
  }));
  return h("details", { class: "box", id: "org-blocked" }, h("summary", {}, "Change the blocked scopes"), form);
}

// projectsSection lists the organization's projects and whether each is
// internal, as keyward org add-project and remove-project change them:
// PUT /v1/orgs/{domain}/projects/{project} places a project, changes its
// internal flag or moves it from the organization it is in (a project is
// in at most one), and DELETE takes it out, after a confirmation. others
// are the domains of the other organizations, where a project may be
// moved. The admin API's refusals (a project name it does not take, a
// project no longer here) are shown as written; the forms keep what was
// typed.
//
// Each change is made only to the organization as this page shows it:
// placing, changing or removing a project sends If-Match: etag, o's ETag,
// and the server refuses it (412) if someone changed the organization, its
// projects included, since. The admin API checks a move against the
// organization the project goes to, which this page did not read: so a
// move first reads o's ETag again and is not sent if it changed (a check
// made just before, not in the server's transaction). Either refusal
// shows the organization as it is now, with the description of what was
// not done.
function projectsSection(o, etag, path, others, go) {
  const ppath = (domain, project) => "/orgs/" + seg(domain) + "/projects/" + seg(project);
  const projects = o.projects ?? [];
  // unchanged runs send; a 412 shows the page again, as it is now, and
  // the description.
  const unchanged = (send) => unchangedItem(cell(o.domain), () => go(location.hash), send, "The page");
  const place = (domain, project, internal, notice) => unchanged(async () => {
    if (domain === o.domain) {
      await admin.put(ppath(domain, project), { internal }, etag);
    } else {
      const [, now] = await admin.getTagged(path);
      if (now !== etag) {
        throw new ApiError(412, "precondition_failed", `The organization ${cell(o.domain)} has changed since this page showed it: `
          + `someone else changed it meanwhile, so the project ${cell(project)} was not moved.`);
      }
      await admin.put(ppath(domain, project), { internal });
    }
    await go(domain === o.domain ? location.hash : "#/orgs/" + seg(domain), notice);
  });

  const [nameLabel, name] = input("Project", "project-name", { required: true, placeholder: "billing" });
  const internal = h("input", { type: "checkbox", id: "f-project-internal" });
  const submit = h("button", { type: "submit" }, "Place project");
  const form = h("form", { class: "grid", id: "place-project" }, nameLabel, name,
    h("label", { for: internal.id }, "Internal"), h("span", { class: "checks" }, h("label", { for: internal.id }, internal,
      " its accounts may act only for this organization's users")),
    h("span"), submit);
  // A 412 shows the page again, its form empty: the error names the
  // project entered, to place again, as blockedForm names the scopes.
  form.addEventListener("submit", act(submit, async () => {
    const project = name.value.trim(), asInternal = internal.checked;
    try {
      await place(o.domain, project, asInternal, `Placed the project ${cell(project)} in ${cell(o.domain)}`
        + (asInternal ? ", internal: its accounts may act only for its users." : "."));
    } catch (e) {
      if (e.status === 412) e.message += ` The project entered was ${cell(project)}${asInternal ? ", as internal" : ""}: place it again from there.`;
      throw e;
    }
  }));

  const moveForm = (p) => {
    const to = h("select", { id: "f-move-" + p.project, "aria-label": `Organization to move ${cell(p.project)} to` },
      others.map((d) => h("option", { value: d }, cell(d))));
    const move = h("button", { type: "submit" }, "Move");
    const f = h("form", { class: "inline" }, to, move);
    f.addEventListener("submit", act(move, async () => {
      const dest = to.value;
      if (!await confirmAction(`Move the project ${cell(p.project)} from ${cell(o.domain)} to ${cell(dest)}?`
        + (p.internal ? ` It stays internal: its accounts may then act only for the users of ${cell(dest)}, no longer for those of ${cell(o.domain)}.` : ""), "Move")) return;
      await place(dest, p.project, p.internal, `Moved the project ${cell(p.project)} from ${cell(o.domain)} to ${cell(dest)}.`);
    }));
    return f;
  };

  return h("section", { id: "projects" }, h("h2", {}, "Projects"),
    h("p", {}, "The service accounts of an internal project may act only for this organization's users. "
      + "A project is in one organization at most: placing one that is in another moves it here."),
    table([
      ["Project", (p) => cell(p.project)],
      ["Internal", (p) => (p.internal ? "yes" : "no")],
      ["", (p) => h("span", { class: "actions" },
        p.internal
          ? button("Make not internal", () => place(o.domain, p.project, false,
            `The project ${cell(p.project)} is no longer internal to ${cell(o.domain)}.`))
          : button("Make internal", () => place(o.domain, p.project, true,
            `The project ${cell(p.project)} is internal: its accounts may act only for the users of ${cell(o.domain)}.`)),
        others.length ? moveForm(p) : null,
        button("Remove", async () => {
          if (!await confirmAction(`Take the project ${cell(p.project)} out of ${cell(o.domain)}?`
            + (p.internal ? " Its accounts are then no longer restricted to this organization's users." : ""), "Remove")) return;
          await unchanged(() => admin.del(ppath(o.domain, p.project), etag));
          await go(location.hash, `Took the project ${cell(p.project)} out of ${cell(o.domain)}.`);
        }, "danger"))],
    ], projects, "No projects are placed in this organization."),
    h("details", { class: "box", id: "place" }, h("summary", {}, "Place a project"), form));
}

// delegationsSection lists the grants (client ID → scopes), revokes one
// after a confirmation and grants one (PUT, replacing an earlier grant of
// the account). The admin API takes numeric client IDs only: its refusal
// of an email explains why, and the form keeps what was typed.
function delegationsSection(o, path, grants, go) {
  const gpath = (id) => path + "/delegations/" + seg(id);
  const [clientLabel, client] = input("Client ID (the account's 21 digits)", "grant-client", { required: true, placeholder: "246139653371601309923" });
  const [scopesLabel, scopes] = input("Scopes (space-separated)", "grant-scopes", { required: true, placeholder: "orders.read" });
  const submit = h("button", { type: "submit" }, "Grant");
  const form = h("form", { class: "grid", id: "grant-form" }, clientLabel, client, scopesLabel, scopes, h("span"), submit);
  form.addEventListener("submit", act(submit, async () => {
    const id = client.value.trim();
    const g = await admin.put(gpath(id), { scopes: words(scopes.value) });
    await go(location.hash, `Granted ${cell(g.client_id)} delegated access to ${list(g.scopes)} for the users of ${cell(o.domain)}.`);
  }));
  return h("section", {}, h("h2", {}, "Delegation grants"),
    table([
      ["Client ID", (g) => h("a", { href: "#/accounts/" + seg(g.client_id) }, cell(g.client_id))],
      ["Scopes", (g) => list(g.scopes)],
      ["Granted", (g) => fmtTime(g.created_at)],
      ["", (g) => button("Revoke", async () => {
        if (!await confirmAction(`Revoke the delegation of ${cell(g.client_id)} in ${cell(o.domain)}? It gets no more tokens for the `
          + "organization's users, and those it has stop working at once.", "Revoke")) return;
        await admin.del(gpath(g.client_id));
        await go(location.hash, `Revoked the delegation of ${cell(g.client_id)} in ${cell(o.domain)}.`);
      }, "danger")],
    ], grants, "No service account may act for this organization's users."),
    h("details", { class: "box", id: "grant" }, h("summary", {}, "Grant delegated access"),
      h("p", {}, "Lets a service account act for the organization's users with these scopes; an earlier grant of the account is replaced."),
      form));
}

// usersSection pages through the organization's directory (50 users a
// page), adds a user, and suspends, reinstates and deletes one; a change
// shows the page again, so the page being read stays.
async function usersSection(o, path) {
  const holder = h("div");
  const upath = (u) => "/users/" + seg(u.email);
  // show shows the page being read again, then notice.
  const show = async (notice) => {
    await users.again();
    if (notice) showNotice(notice);
  };
  const users = pager(holder, (_, tok) => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (tok) q.set("page_token", tok);
    return admin.get(path + "/users?" + q);
  }, (res, _, tok) => table([
    ["Email", (u) => cell(u.email)],
    ["State", (u) => h("span", { class: u.suspended ? "state off" : "state on" }, u.suspended ? "suspended" : "active")],
    ["Added", (u) => fmtTime(u.created_at)],
    ["", (u) => h("span", { class: "actions" },
      u.suspended
        ? button("Unsuspend", async () => { await admin.post(upath(u) + "/unsuspend"); await show(`Unsuspended ${cell(u.email)}.`); })
        : button("Suspend", async () => {
          await admin.post(upath(u) + "/suspend");
          await show(`Suspended ${cell(u.email)}; tokens that act for the user stop working at once.`);
        }),
      button("Delete", async () => {
        if (!await confirmAction(`Delete the user ${cell(u.email)} from the directory? Tokens that act for the user stop working.`, "Delete")) return;
        await admin.del(upath(u));
        await show(`Deleted the user ${cell(u.email)}.`);
      }, "danger"))],
  ], res.users, tok ? "No more users." : "No users in the directory."));
  await users.show(null);

  // Not type=email: the browser's rule for an email is not the admin
  // API's (it refuses jöhn@…, which the admin API takes); the admin API
  // says what it refuses.
  const [emailLabel, email] = input("Email", "user-email", { inputmode: "email", required: true, placeholder: cell("alice@" + o.domain) });
  const submit = h("button", { type: "submit" }, "Add user");
  const form = h("form", { class: "inline", id: "add-user" }, emailLabel, email, submit);
  form.addEventListener("submit", act(submit, async () => {
    const e = email.value.trim();
    await admin.post(path + "/users", { users: [{ email: e }] });
    email.value = "";
    await show(`Added ${cell(toLower(e))} to the directory of ${cell(o.domain)}.`);
  }));
  return h("section", {}, h("h2", {}, "Users"),
    h("p", {}, "An email already in the directory is replaced, and reinstated if it was suspended."),
    holder, form, importUsersForm(o, path, show));
}

// importUsersForm adds or replaces the users of a CSV or JSON file in the
// directory, as keyward users import does: the file is read in the page
// (parseUsers), every bad row reported with its line and nothing sent while
// any is bad; then its users go to POST /v1/orgs/{domain}/users in
// batches (importBatches: at most 5,000 users, each well under the 1 MiB
// the admin API reads), one after another, each of which the admin API
// makes in one transaction, all or none. A file of up to 5,000 users is
// so imported all or none, unless their emails average more than about 60
// bytes (5,000 such are over IMPORT_BATCH_BYTES); one of several batches
// shows its progress while they go, and a failed batch stops the import: the error says how
// many users the batches before it imported, which batch failed and why
// (a refusal as the admin API wrote it, with the line of each user it
// names), and that the users after it were not sent. show(notice) shows
// the page of users being read again.
function importUsersForm(o, path, show) {
  const file = h("input", { type: "file", id: "f-import-file", required: true, accept: ".csv,.json,.txt,text/csv,application/json,text/plain" });
  const submit = h("button", { type: "submit" }, "Import users");
  const form = h("form", { class: "inline", id: "import-users" }, h("label", { for: file.id }, "CSV or JSON file"), file, submit);
  const bar = h("progress", { id: "import-bar" });
  const note = h("span", { id: "import-progress" });
  const progress = h("p", { class: "progress", role: "status", hidden: true }, bar, " ", note);
  // report shows that done of total users are imported.
  const report = (done, total) => {
    bar.max = total;
    bar.value = done;
    note.textContent = `Imported ${count(done)} of ${count(total)} users…`;
    progress.hidden = false;
  };
  form.addEventListener("submit", act(submit, async () => {
    // The batches go in the session the import began in only: one that
    // signed out (or in again, maybe as another administrator) meanwhile
    // would otherwise send the rest with its own token, audited as its.
    const began = currentSession();
    const f = file.files[0];
    if (!f) throw new Error("Choose a file first.");
    // The file's name as strconv.Quote would show it: an invisible or
    // bidirectional character in it shows.
    const name = quote(f.name);
    if (f.size > MAX_IMPORT_BYTES) {
      throw new Error(`${name} is larger than ${MAX_IMPORT_BYTES >> 20} MiB, far more than the ${count(MAX_IMPORT_USERS)} users a file may hold take: was it the file meant?`);
    }
    const users = parseUsers(decodeUsers(await f.arrayBuffer()), o.domain);
    const batches = importBatches(users);
    let imported = 0;
    try {
      for (const [k, [from, to]] of batches.entries()) {
        if (batches.length > 1) report(imported, users.length);
        let res;
        try {
          if (currentSession() !== began) throw new ApiError(0, NOT_SENT, "The console signed out after the import began, so it sent no more of it.");
          res = (await request("POST", "/v1" + path + "/users", {
            body: { users: users.slice(from, to).map(({ email, suspended }) => ({ email, suspended })) }, timeout: IMPORT_TIMEOUT,
          })).data;
        } catch (e) {
          if (imported > 0) await show().catch(() => {}); // the users imported so far; the error is the import's
          throw importFailed(e, name, users, batches, k, imported);
        }
        imported += res.users;
      }
    } finally {
      progress.hidden = true;
    }
    file.value = "";
    const suspended = users.filter((u) => u.suspended).length;
    await show(`Imported ${nUsers(imported)} from ${name} into the directory of ${cell(o.domain)}`
      + (suspended ? (imported === 1 ? ", suspended" : `, ${count(suspended)} of them suspended`) : "")
      + (batches.length > 1 ? `, in ${batches.length} batches of at most ${count(IMPORT_BATCH)}, each in one transaction.` : "."));
  }));
  return h("details", { class: "box", id: "import" }, h("summary", {}, "Import users from a file"),
    h("p", {}, "CSV: one user a line, email[,status] with status active or suspended, an optional header line email,status, # for comments (quote an email that starts with #). "
      + 'JSON: [{"email": …, "suspended": …}] or {"users": [...]}. Each email must be of ' + cell(o.domain) + "; one already in the "
      + "directory is replaced, suspended or reinstated as the file says. Nothing is imported while any row is bad. "
      + `The users are sent ${count(IMPORT_BATCH)} at a time (fewer if their emails are very long), each batch in one `
      + "transaction: should a batch fail, the batches before it stay imported and those after it are not sent."),
    form, progress);
}

// count writes a number of users with thousands separators: 23,000.
const count = (n) => n.toLocaleString("en-US");

// nUsers writes n users, as count does, in the singular for one: 1 user,
// 23,000 users (keyward users import's counted).
const nUsers = (n) => `${count(n)} ${n === 1 ? "user" : "users"}`;

// IMPORT_TIMEOUT is how long, in seconds, a batch of an import waits for
// its answer: longer than other requests, as up to 512 KiB go up.
const IMPORT_TIMEOUT = 60;

// NOT_SENT is the code of the error of a batch the import did not send.
const NOT_SENT = "not_sent";

// importFailed is the error of an import of the users of the file name
// (quoted) whose batch k (of batches, [from, to) ranges of users) failed with e,
// after the batches before it imported imported users. Unless the admin
// API (or a proxy) refused the batch, whether it was imported is not
// known: without an answer, or with a 5xx, it may have been committed.
// A batch given up unanswered says so plainly: request's message for a
// change would say again that it is not known.
// The API numbers the users it refuses from 1, in the batch's order: each
// one named is shown with its line in the file.
function importFailed(e, name, users, batches, k, imported) {
  const [from, to] = batches[k];
  const unsent = e instanceof ApiError && e.code === NOT_SENT;
  const unknown = !unsent && (!(e instanceof ApiError) || e.status === 0 || e.status >= 500);
  const one = batches.length === 1;
  const why = e instanceof ApiError && e.code === "timeout" ? `The server did not answer within ${IMPORT_TIMEOUT} s.` : e.message;
  let msg;
  if (one) {
    const them = users.length === 1 ? "the user of " + name + " was" : "the users of " + name + " were";
    msg = unknown ? `Whether ${them} imported is not known (no answer, or a server error): ${why}` : e.message;
  } else {
    const rest = users.length - to;
    msg = (from > 0 ? `Imported ${count(imported)} of the ${count(users.length)} users of ${name}; batch` : "Batch")
      + ` ${k + 1} of ${batches.length} (${to - from === 1 ? "user " + count(to) : `users ${count(from + 1)} to ${count(to)}`}) failed`
      + (rest > 0 ? ` and the ${rest === 1 ? "user after it was" : count(rest) + " users after it were"} not sent.\n` : ".\n")
      + (unsent ? `Batch ${k + 1} was not sent: ` : unknown ? `Whether batch ${k + 1} was imported is not known (no answer, or a server error): `
        : `Batch ${k + 1} was refused, and ${to - from === 1 ? "its user was not" : "none of its users were"} imported: `)
      + why;
  }
  const named = [...e.message.matchAll(/\buser (\d+):/g)].map((m) => Number(m[1])).filter((n) => n >= 1 && n <= to - from);
  for (const n of named) {
    msg += "\n" + (one ? `user ${n}` : `user ${n} of batch ${k + 1}`) + ` is on line ${count(users[from + n - 1].line)} of ${name}`;
  }
  return new Error(msg);
}
