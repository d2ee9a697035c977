// The session and the calls to the server. The access token lives in this
// module's memory only: never in storage or cookies, so a reload signs out.

let session = null; // { token, me, expiresAt (ms), revokeID, timer }
const listeners = [];
let leaves = 0; // how often the page was left (leavePage)

// ApiError is a refused request, with the server's description.
export class ApiError extends Error {
  constructor(status, code, description) {
    super(description || code || `The server answered HTTP ${status}.`);
    this.status = status;
    this.code = code;
  }
}

// onSessionChange registers fn(session or null, reason, notice) for
// sign-in and sign-out.
export function onSessionChange(fn) { listeners.push(fn); }

export function currentSession() { return session; }

// signIn keeps the token and signs out when it expires. me is the admin
// API's GET /v1/whoami answer for it; expiresAt is in milliseconds on this
// browser's clock. revokeID is the token's jti when the console obtained
// the token itself, so that signing out may revoke it; a pasted token may
// be in use elsewhere too.
export function signIn(token, me, expiresAt, revokeID = null) {
  signOut(null, true);
  session = { token, me, expiresAt, revokeID, timer: null };
  // setTimeout cannot wait longer than about 24.8 days.
  const ms = Math.min(Math.max(expiresAt - Date.now(), 0), 2 ** 31 - 1);
  session.timer = setTimeout(() => signOut("Your access token expired; sign in again."), ms);
  listeners.forEach((fn) => fn(session, null));
}

// endSession revokes the token the console obtained, if it did, and signs
// out. A failed revocation is reported, but signs out all the same; one
// not answered may have been carried out, or not, so the token may still
// be valid (request's message for a change would say to open the page).
export async function endSession() {
  const id = session?.revokeID;
  if (!id) {
    signOut();
    return;
  }
  try {
    await request("POST", "/v1/tokens/revoke", { body: { jti: id } });
    signOut("Signed out; the console's access token is revoked.", false, true);
  } catch (e) {
    signOut(e?.code === "timeout"
      ? `Signed out, but the server did not answer the revocation of the access token within ${REQUEST_TIMEOUT} s, so the token may still be valid until it expires (at most its lifetime).`
      : `Signed out, but the access token could not be revoked (${e.message}); it stays valid until it expires.`);
  }
}

// leavePage signs out as the page is left, or shown again, from the
// browser's back/forward cache, with reason as a notice; a sign-in begun
// before then does not complete (beginSignIn).
export function leavePage(reason) {
  leaves++;
  signOut(reason, false, true);
}

// beginSignIn is called as a sign-in begins. The function it returns
// tells whether the page has been left since (leavePage): the sign-in
// then must not complete, though its answers come in, as they may on a
// page shown again from the back/forward cache, which would otherwise be
// signed in again by a sign-in begun before it was left.
export function beginSignIn() {
  const at = leaves;
  return () => leaves !== at;
}

// signOut forgets the token. reason, if any, is shown on the sign-in page,
// as an error unless notice; quiet tells no one.
export function signOut(reason = null, quiet = false, notice = false) {
  if (session?.timer) clearTimeout(session.timer);
  const had = session !== null;
  session = null;
  if (had && !quiet) listeners.forEach((fn) => fn(null, reason, notice));
}

// REQUEST_TIMEOUT is how long, in seconds, a request waits for the
// server's whole answer by default: a server (or proxy) that takes the
// connection in and never answers is given up then, not waited for for
// ever. The server gives up an admin request after 20 s itself.
export const REQUEST_TIMEOUT = 30;

// request sends a request to this server (paths are relative to the
// console, so a proxy may mount Keyward under a prefix) and returns the
// decoded JSON answer (data, null when empty) and its Date and ETag
// headers. auth is true for the session's token, a string for that token,
// or false; ifMatch, if set, is sent as If-Match; timeout is how many
// seconds it waits for the answer, body included, before giving up;
// change tells whether the request changes something, as any method but
// GET and HEAD does by default. It throws ApiError: of status 0 when there
// was no answer, so whether a change was made is not known, which the
// timeout's message then says rather than to try again.
export async function request(method, path, { body, form, auth = true, ifMatch, timeout = REQUEST_TIMEOUT, change = method !== "GET" && method !== "HEAD" } = {}) {
  // seg leaves dots as they are, and no escape helps: a URL parser takes
  // a segment of "." or ".." (%2e too) for this folder or the one above
  // and drops it, with the segment before it, so the request would go to
  // another resource. Nothing is so named (the admin API's names and IDs
  // have letters or digits), so it is not sent.
  const dots = path.split("?")[0].split("/").find((s) => /^(?:\.|%2e){1,2}$/i.test(s));
  if (dots !== undefined) {
    throw new ApiError(0, "console", `No project, account, API, organization or user is named "${decodeURIComponent(dots)}": the request was not sent `
      + "(in an address, a browser takes . for this folder and .. for the one above).");
  }
  const headers = {};
  if (ifMatch) headers["If-Match"] = ifMatch;
  const init = { method, headers, credentials: "omit", cache: "no-store", redirect: "error", signal: AbortSignal.timeout(timeout * 1000) };
  // A change left unanswered may have been made: sent again, it could be
  // made twice (a second secret or key).
  const unanswered = (e) => e?.name === "TimeoutError"
    ? new ApiError(0, "timeout", change
      ? `The server did not answer within ${timeout} s, so whether the change was made is not known: open the page again to see whether it was before trying again.`
      : `The server did not answer within ${timeout} s; try again.`)
    : null;
  const sent = auth === true ? session : null; // the session whose token it carries
  if (auth === true) {
    if (!session) throw new ApiError(401, "invalid_token", "You are signed out.");
    headers.Authorization = "Bearer " + session.token;
  } else if (auth) {
    headers.Authorization = "Bearer " + auth;
  }
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  } else if (form !== undefined) {
    init.body = new URLSearchParams(form);
  }
  let resp;
  try {
    resp = await fetch(new URL(".." + path, document.baseURI), init);
  } catch (e) {
    throw unanswered(e) ?? new ApiError(0, "network", `Could not reach the server (${e.message}).`);
  }
  let text;
  try {
    text = await resp.text();
  } catch (e) {
    throw unanswered(e) ?? new ApiError(0, "network", `The server's answer was cut off (${e.message}).`);
  }
  const wait = retryAfter(resp);
  // ended signs out if the answer is a 401 to the session's token, whatever
  // its body (data, or null: a proxy in front of the server may answer
  // with a page of its own). Only the session whose token was refused
  // ends: an answer that comes after its user signed out and in again is
  // not the new session's.
  const ended = (data) => {
    if (sent !== null && resp.status === 401 && session === sent) {
      const why = data?.error_description || `The server refused the access token (HTTP 401${data?.error ? ", " + data.error : ""}).`;
      signOut(`The session ended: sign in again. ${why}`);
    }
  };
  let data = null;
  if (text !== "") {
    try {
      data = JSON.parse(text);
    } catch {
      ended(null);
      throw new ApiError(resp.status, "bad_response", `The server answered HTTP ${resp.status} ${resp.statusText} with a body that is not JSON.${wait}`);
    }
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data?.error, data?.error_description);
    err.message += wait;
    ended(data);
    throw err;
  }
  return { data, date: resp.headers.get("Date"), etag: resp.headers.get("ETag") };
}

// retryAfter is the sentence that says how long the Retry-After of a 429
// or 503 answer (RFC 9110 §10.2.3: seconds, or an HTTP date) asks to wait
// before trying again, after a space, or "" for none: in seconds up to
// 90 s, minutes up to 90 minutes, hours up to 48 hours, and beyond that
// only "more than 2 days", so an absurd value (a proxy's, a misset clock's
// date) is not read out to the minute. The console does not try again
// itself: the operator does.
function retryAfter(resp) {
  if (resp.status !== 429 && resp.status !== 503) return "";
  const v = resp.headers.get("Retry-After")?.trim() ?? "";
  let secs;
  if (/^\d+$/.test(v)) {
    secs = Number(v);
  } else {
    const at = Date.parse(v), now = Date.parse(resp.headers.get("Date") ?? "");
    secs = Math.ceil((at - (isNaN(now) ? Date.now() : now)) / 1000);
  }
  if (!(secs > 0)) return "";
  const count = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}.`;
  if (secs <= 90) return " Try again in " + count(secs, "second");
  if (secs <= 90 * 60) return " Try again in " + count(Math.ceil(secs / 60), "minute");
  if (secs <= 48 * 3600) return " Try again in " + count(Math.ceil(secs / 3600), "hour");
  return " Try again in more than 2 days.";
}

// The admin API: path is below /v1. getTagged returns [data, its ETag];
// patch, put, del or post (an account's, key's or secret's disable or
// enable) with that ETag, or the "etag" a list gives an item, as ifMatch
// is refused (412) if the resource was changed since.
export const admin = {
  get: async (path) => (await request("GET", "/v1" + path)).data,
  getTagged: async (path) => {
    const { data, etag } = await request("GET", "/v1" + path);
    return [data, etag];
  },
  post: async (path, body, ifMatch) => (await request("POST", "/v1" + path, { body, ifMatch })).data,
  patch: async (path, body, ifMatch) => (await request("PATCH", "/v1" + path, { body, ifMatch })).data,
  put: async (path, body, ifMatch) => (await request("PUT", "/v1" + path, { body, ifMatch })).data,
  del: async (path, ifMatch) => (await request("DELETE", "/v1" + path, { ifMatch })).data,
};

// seg escapes one path segment.
export const seg = encodeURIComponent;
