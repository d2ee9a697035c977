// Reading a file of users to import into an organization's directory, as
// keyward users import does (admin.ParseUserRows): CSV, one user a line,
// email[,status] with status active or suspended, # comments, and a first
// row that is not an email being the header email,status (or email); or
// JSON, [{"email", "suspended" or "status"}] or {"users": [...]}; a byte
// order mark only at the start. Every bad row is reported with its line, and no user
// is imported while any row is bad. The users are then sent in batches
// (importBatches), as keyward users import sends them.

import { printable, quote, cell } from "./goquote.js";

// MAX_REPORTED is how many bad rows are reported one by one
// (admin.MaxReportedRows).
const MAX_REPORTED = 20;

// MAX_IMPORT_USERS is the most users one file may hold
// (admin.MaxImportUsers); MAX_IMPORT_BYTES is the largest file read, as
// keyward users import reads (maxUsersFile): far more than so many users
// take, so a larger file was chosen by mistake.
export const MAX_IMPORT_USERS = 100000;
export const MAX_IMPORT_BYTES = 64 << 20;

// IMPORT_BATCH is the most users one request of an import sends, and so
// one transaction adds; IMPORT_BATCH_BYTES is about the most JSON one
// sends, well under the 1 MiB the admin API reads. They are the numbers
// keyward users import batches with (importBatch and importBatchBytes in
// cmd/keyward), which a test checks.
export const IMPORT_BATCH = 5000;
export const IMPORT_BATCH_BYTES = 512 << 10;

// importBatches splits users (as parseUsers returns them) into the
// batches an import sends, one request each, as keyward users import
// does (batchLen): [from, to) ranges of at most IMPORT_BATCH users, a
// batch taking users while the JSON counted so far is under
// IMPORT_BATCH_BYTES, each user counted as its email's JSON (in UTF-8, as
// the request sends it) and 40 bytes more.
export function importBatches(users) {
  const out = [];
  for (let from = 0; from < users.length;) {
    let to = from, size = 0;
    while (to < users.length && to - from < IMPORT_BATCH && size < IMPORT_BATCH_BYTES) {
      size += utf8Length(JSON.stringify(users[to].email)) + 40;
      to++;
    }
    out.push([from, to]);
    from = to;
  }
  return out;
}

// ImportError is a file that cannot be imported; its message is for
// people, one problem a line.
export class ImportError extends Error {}

// decoder reads a file's bytes as UTF-8, as keyward users import does:
// invalid UTF-8 is an error (not U+FFFD in its place, which Blob.text()
// writes), and a byte order mark at the start is kept, for parseUsers to
// take (Blob.text() drops one, and a second would pass).
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// decodeUsers returns the text of a file's bytes (an ArrayBuffer or a
// typed array) for parseUsers. It throws ImportError for invalid UTF-8,
// refused as keyward users import refuses it: each line with such bytes
// (or with a NUL character) is a bad row (textRows).
export function decodeUsers(bytes) {
  try {
    return decoder.decode(bytes);
  } catch {
    const b = new Uint8Array(bytes.buffer ?? bytes, bytes.byteOffset ?? 0, bytes.byteLength);
    const notUTF8 = new Set();
    for (let start = 0, line = 1; start <= b.length; line++) { // a line break is ASCII: no character spans two lines
      let end = b.indexOf(0x0a, start);
      if (end < 0) end = b.length;
      try {
        decoder.decode(b.subarray(start, end));
      } catch {
        notUTF8.add(line);
      }
      start = end + 1;
    }
    let text = new TextDecoder("utf-8", { ignoreBOM: true }).decode(b); // U+FFFD for the bytes, to find NULs' columns by
    if (text.startsWith("\ufeff")) text = text.slice(1);
    textRows(text, notUTF8);
    throw new ImportError("The file must be UTF-8 text."); // not reached: a line has bytes that are not UTF-8
  }
}

// textRows throws ImportError naming each line of text with a NUL
// character (with the column of its CSV field, nulColumns; in JSON, a
// \u0000 escape too, nulEscape) or whose line number is in notUTF8, as
// keyward users import names them (admin.notTextRows).
function textRows(text, notUTF8) {
  const rows = new Rows("");
  const json = isJSON(text);
  const cols = json ? new Map() : nulColumns(text);
  text.split("\n").forEach((l, k) => {
    if (l.includes("\u0000")) {
      rows.bad.push(`line ${k + 1}: a NUL character (U+0000)${cols.get(k + 1) ?? ""}, which Keyward does not store: remove it`);
    } else if (json && nulEscape(l)) {
      rows.bad.push(`line ${k + 1}: a NUL character (the escape \\u0000), which Keyward does not store: remove it`);
    } else if (notUTF8.has(k + 1)) {
      rows.bad.push(`line ${k + 1}: bytes that are not UTF-8 (Latin-1, say): save the file as UTF-8`);
    }
  });
  rows.result();
}

// nulColumns maps each line of text, CSV, with a NUL character in a
// field to the field's column, " in the email column", as readCSV reads
// the fields (the first NUL of a line names it), up to the first row
// that is not valid CSV (admin.nulColumns).
function nulColumns(text) {
  const cols = new Map();
  const names = HEADER.split(",");
  try {
    readCSV(text, { add() {} }, (field, j, line) => {
      const k = field.indexOf("\u0000");
      if (k < 0) return;
      const at = line + field.slice(0, k).split("\n").length - 1; // a quoted field may span lines
      if (!cols.has(at)) cols.set(at, j < names.length ? ` in the ${names[j]} column` : ` in column ${j + 1}`);
    });
  } catch (e) {
    if (!(e instanceof ImportError)) throw e;
  }
  return cols;
}

// isJSON reports whether text, a users file, is JSON (its first
// character after white space is [ or {), not CSV (admin.usersJSON).
function isJSON(text) {
  const t = text.replace(/^[ \t\r\n]+/, "");
  return t[0] === "[" || t[0] === "{";
}

// nulEscape reports whether text, JSON, holds a \u0000 escape: a
// "u0000" after an odd number of backslashes, not an escaped backslash
// and the text "u0000" (admin.hasNUL). CSV has no escapes.
function nulEscape(text) {
  for (let i = text.indexOf("u0000"); i >= 0; i = text.indexOf("u0000", i + 1)) {
    let slashes = 0;
    for (let k = i - 1; k >= 0 && text[k] === "\\"; k--) slashes++;
    if (slashes % 2 === 1) return true;
  }
  return false;
}

// parseUsers reads text and returns its users ({email, suspended, line}),
// emails trimmed and lower-cased, each of domain: a user belongs to the
// organization of its email's domain. Whether an email is well formed is
// the admin API's to say. It throws ImportError.
export function parseUsers(text, domain) {
  if (text.startsWith("\ufeff")) text = text.slice(1); // a UTF-8 byte order mark, as Excel writes
  if (text.includes("\u0000") || isJSON(text) && nulEscape(text)) textRows(text, new Set());
  if (text.includes("\ufeff")) { // one anywhere else (admin.bomRows)
    const rows = new Rows(domain);
    text.split("\n").forEach((l, k) => {
      if (l.includes("\ufeff")) rows.bad.push(`line ${k + 1}: ${BOM_PROBLEM}`);
    });
    rows.result();
  }
  const trimmed = trimSpace(text);
  if (trimmed === "") throw new ImportError("The file is empty.");
  const rows = new Rows(domain);
  // JSON by JSON's white space alone (isJSON): a Unicode space before
  // { or [ starts a CSV field, as keyward users import reads it.
  if (isJSON(text)) readJSON(text, rows);
  else readCSV(text, rows);
  return rows.result();
}

// BOM_PROBLEM is what is wrong with a line with a byte order mark, which
// only the start of the file may have: one in a field, invisible, would
// make an email, a status or the header that is not what it looks like.
const BOM_PROBLEM = "a byte order mark (U+FEFF, invisible), which only the start of the file may have (files joined together each bring theirs): remove it";

// SPACE is the white space Go's unicode.IsSpace takes, which keyward
// users import trims (strings.TrimSpace, and encoding/csv's
// TrimLeadingSpace): String.prototype.trim drops U+FEFF too, but not
// U+0085 (NEL). TestConsoleUnicodeTables checks it against Go's.
const SPACE = new Set("\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000");

// trimSpace is s without white space at either end (strings.TrimSpace).
// (A loop, not a regular expression, whose /\s+$/ takes time square in
// a long run of spaces.)
function trimSpace(s) {
  let i = 0, j = s.length;
  while (i < j && SPACE.has(s[i])) i++;
  while (j > i && SPACE.has(s[j - 1])) j--;
  return s.slice(i, j);
}

// Rows collects the users of a file and what is wrong with them.
class Rows {
  constructor(domain) {
    this.domain = toLower(domain);
    this.users = [];
    this.bad = [];
    this.seen = new Map(); // email → line
    this.total = 0; // the rows read, bad ones too
  }

  // add checks one row; problem is what the reader found wrong already.
  add(line, email, suspended, problem = null) {
    if (++this.total > MAX_IMPORT_USERS) return; // reported as too many
    let e = typeof email === "string" ? trimSpace(email) : "";
    if (!problem) {
      if (typeof email !== "string" && email !== undefined) problem = "the email must be a string";
      else if (e === "") problem = "no email";
    }
    if (!problem) {
      e = toLower(e);
      if (!e.endsWith("@" + this.domain)) {
        problem = `${showEmail(e)} is not in ${cell(this.domain)}: a user belongs to the organization of its email's domain`;
      } else if (this.seen.has(e)) {
        problem = `${showEmail(e)} is also on line ${this.seen.get(e)}`;
      }
    }
    if (problem) {
      this.bad.push(`line ${line}: ${problem}`);
      return;
    }
    this.seen.set(e, line);
    this.users.push({ email: e, suspended, line });
  }

  result() {
    if (this.total > MAX_IMPORT_USERS) {
      throw new ImportError(`The file has more than ${MAX_IMPORT_USERS.toLocaleString("en-US")} users: split it.`);
    }
    const n = this.bad.length;
    if (n > 0) {
      const shown = this.bad.slice(0, MAX_REPORTED);
      if (n > MAX_REPORTED) shown.push(`and ${n - MAX_REPORTED} more bad ${n - MAX_REPORTED === 1 ? "row" : "rows"}`);
      throw new ImportError(`${n} bad ${n === 1 ? "row" : "rows"}, nothing was imported; fix and retry:\n  ${shown.join("\n  ")}`);
    }
    if (this.users.length === 0) throw new ImportError("The file has no users.");
    return this.users;
  }
}

// status reads a status column: active (or empty) or suspended.
function status(s) {
  switch (toLower(trimSpace(s))) {
    case "": case "active": return [false, null];
    case "suspended": return [true, null];
  }
  return [false, `status ${quoteClip(s)} must be active or suspended`];
}

// quoteClip quotes s, a value from the file, for a message, as Go's
// strconv.Quote does (escaping what is not printable, an invisible
// character too); one longer than 64 bytes (UTF-8) is cut to the whole characters of
// its first 48, with its length (admin.quoteClip): a file of one 50 MB
// line is not shown back whole.
function quoteClip(s) {
  const n = utf8Length(s);
  if (n <= 64) return quote(s);
  let cut = "", used = 0;
  for (const ch of s) {
    const l = utf8Length(ch);
    if (used + l > 48) break;
    cut += ch;
    used += l;
  }
  return `${quote(cut)}… (${n} bytes)`;
}

// showEmail shows an email from the file for a message: as it is, or,
// longer than 64 bytes (UTF-8) or with a character that is not printable,
// as quoteClip shows it (admin.showEmail).
function showEmail(e) {
  return utf8Length(e) > 64 || !printable(e) ? quoteClip(e) : e;
}

// toLower lower-cases s as Go's strings.ToLower does, as keyward users
// import and the admin API lower-case emails: letter by letter (Σ is σ,
// never the final ς that toLowerCase() writes at a word's end), and İ
// (U+0130) is i, not toLowerCase()'s i and a combining dot.
export const toLower = (s) => Array.from(s, (c) => (c === "\u0130" ? "i" : c.toLowerCase())).join("");

const encoder = new TextEncoder();

// utf8Length is the length of s in UTF-8 bytes.
function utf8Length(s) {
  return encoder.encode(s).length;
}

// HEADER is the header line a CSV file may begin with; "email" alone is
// one too (admin.UsersHeader).
const HEADER = "email,status";

// isHeader says whether rec, the first row of a CSV file, which has no @,
// is its header: email or email,status, in any case (admin.isUsersHeader).
function isHeader(rec) {
  const cols = HEADER.split(",");
  return rec.length <= cols.length && rec.every((f, i) => toLower(trimSpace(f)) === cols[i]);
}

// readCSV reads CSV as Go's encoding/csv does with TrimLeadingSpace and
// Comment '#': quoted fields (with "" for a quote) may span lines, empty
// lines are skipped. onField, if given, is called with each field, its
// index in its row and the line it starts on.
function readCSV(text, rows, onField) {
  let i = 0, line = 1, first = true;
  const n = text.length;
  const fail = (l, why) => { throw new ImportError(`Not valid CSV at line ${l}: ${why}.`); };
  while (i < n) {
    // One record, starting at line.
    // An empty line; a CR alone ending the file is one too, as encoding/csv
    // drops a CR before the file's end.
    if (text[i] === "\n" || (text[i] === "\r" && (text[i + 1] === "\n" || i + 1 === n))) {
      i += text[i] === "\r" ? 2 : 1;
      line++;
      continue;
    }
    if (text[i] === "#") { // comment line
      while (i < n && text[i] !== "\n") i++;
      i++;
      line++;
      continue;
    }
    const start = line, rec = [];
    let hashed = false; // the line's first field is an unquoted # after spaces
    for (;;) { // one field
      while (i < n && text[i] !== "\n" && SPACE.has(text[i])) i++; // TrimLeadingSpace: to the line's end at most
      if (rec.length === 0 && text[i] === "#") hashed = true;
      const fieldLine = line;
      let field = "";
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (i >= n) fail(start, 'extraneous or missing " in quoted-field');
          const c = text[i++];
          if (c === '"') {
            if (text[i] === '"') { field += '"'; i++; continue; }
            break;
          }
          if (c === "\n") line++;
          field += c;
        }
        // A \r before a line feed or the file's end is dropped, as
        // encoding/csv drops it.
        if (i < n && text[i] !== "," && text[i] !== "\n" && !(text[i] === "\r" && (text[i + 1] === "\n" || i + 1 === n))) {
          fail(line, 'extraneous or missing " in quoted-field');
        }
      } else {
        while (i < n && text[i] !== "," && text[i] !== "\n") {
          if (text[i] === '"') fail(line, 'bare " in non-quoted-field');
          field += text[i++];
        }
        if (text[i] === "\n" && field.endsWith("\r")) field = field.slice(0, -1);
      }
      rec.push(field);
      onField?.(field, rec.length - 1, fieldLine);
      if (text[i] === ",") { i++; continue; }
      if (text[i] === "\r") i++;
      if (text[i] === "\n") { i++; line++; }
      break;
    }
    if (hashed) { // a comment meant to be one, or an email the file had to quote; a header may follow it
      rows.add(start, "", false, `${quoteClip(rec.join(","))} is not a comment: # starts one only as the first character of a line (an email starting with # must be quoted: "#ops@example.com")`);
      continue;
    }
    if (first && !rec[0].includes("@")) { // a header
      first = false;
      if (!isHeader(rec)) rows.add(start, "", false, `${quoteClip(rec.join(","))} is neither an email address nor the header ${HEADER}`);
      continue;
    }
    first = false;
    if (rec.some((f) => f.includes(" #") || f.includes("\t#"))) { // a comment after a value (admin.afterValue)
      rows.add(start, "", false, `${quoteClip(rec.join(","))} has a comment after a value: # starts one only as the first character of a line`);
      continue;
    }
    if (rec.length > 2) {
      rows.add(start, rec[0], false, `${rec.length} columns, want email[,status]`);
      continue;
    }
    const [suspended, problem] = rec.length === 2 ? status(rec[1]) : [false, null];
    rows.add(start, rec[0], suspended, problem);
  }
}

// readJSON reads [{…}, …] or {"users": [{…}, …]}, each user with its line.
function readJSON(text, rows) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ImportError(`Not valid JSON: ${e.message}.`);
  }
  let list = doc, depth = 1;
  if (!Array.isArray(doc)) {
    const keys = Object.keys(doc);
    if (keys.length !== 1 || keys[0] !== "users") throw new ImportError('A JSON object must be {"users": [...]} and nothing else.');
    if (!Array.isArray(doc.users)) throw new ImportError('"users" must be an array.');
    // "users" given twice, of which JSON.parse keeps the last: keyward
    // users import reads the first and refuses what follows it.
    if (objectMembers(text).length !== 1) throw new ImportError('A JSON object must be {"users": [...]} and nothing else.');
    list = doc.users;
    depth = 2;
  }
  const lines = elementLines(text, depth);
  let members = elementMembers(text, depth);
  if (members.length !== list.length) members = []; // not expected: JSON.parse's order then
  list.forEach((obj, k) => {
    const line = lines[k];
    if (obj === null) { // encoding/json leaves the user as it was: empty
      rows.add(line, "", false);
      return;
    }
    if (typeof obj !== "object" || Array.isArray(obj)) {
      rows.add(line, "", false, `a user must be a JSON object, not ${jsonKind(obj)}`);
      return;
    }
    const u = userFields(Array.isArray(members[k]) ? members[k] : Object.entries(obj).map(([n, v]) => [JSON.stringify(n), JSON.stringify(v)]));
    if (u.problem) {
      rows.add(line, "", false, u.problem);
      return;
    }
    let [suspended, problem] = status(u.status ?? "");
    if (typeof u.suspended === "boolean") {
      if (!problem && u.status && u.suspended !== suspended) problem = "suspended and status disagree";
      suspended = u.suspended;
    }
    rows.add(line, u.email, suspended, problem);
  });
}

// USER_KINDS are the fields of a user in a JSON file (admin.jsonUser),
// each with the kind of JSON value it takes, as admin.jsonKind names it.
const USER_KINDS = { email: "a string", suspended: "true or false", status: "a string" };

// jsonKind names the kind of a JSON value v as keyward users import does
// in a message (admin.jsonTypeMismatch).
function jsonKind(v) {
  if (Array.isArray(v)) return "an array";
  switch (typeof v) {
    case "string": return "a string";
    case "number": return "a number";
    case "boolean": return "true or false";
  }
  return "an object";
}

// foldName folds a JSON name as Go's encoding/json does to match it to a
// field without regard to case: ASCII letters upper-cased, and the two
// other letters that fold to ASCII ones, ſ (U+017F) to S and the Kelvin
// sign (U+212A) to K (TestConsoleUnicodeTables checks that no other
// does).
const foldName = (k) => k.replace(/[a-z]/g, (c) => c.toUpperCase()).replace(/\u017f/g, "S").replace(/\u212a/g, "K");

// userFields reads the fields of a user object, its members in the
// file's order, each [name, value] in JSON text, as keyward users import does
// (encoding/json into admin.jsonUser), as goFields reads them.
const userFields = (members) => goFields(members, USER_KINDS);

// goFields reads the members of a JSON object, in the file's order, each
// [name, value] in JSON text (as objectMembers returns them), as Go's
// encoding/json decodes them into a struct whose fields are the names of
// kinds, each taking the kind of JSON value kinds says ("a string", "true
// or false"): a name is its field's, or one the same but for case
// ("Email", "SUSPENDED"); a later one replaces an earlier; null leaves a
// string as it was and unsets another field (a Go pointer); other names
// are ignored. A value of the wrong kind sets problem, for the first such
// member, as encoding/json reports the first.
export function goFields(members, kinds) {
  const names = Object.keys(kinds);
  const u = {};
  for (const [name, value] of members) {
    const k = JSON.parse(name);
    const f = names.includes(k) ? k : names.find((x) => foldName(x) === foldName(k));
    if (f === undefined) continue;
    const v = JSON.parse(value); // only a field's: the others may be large
    if (v === null) {
      if (kinds[f] !== "a string") delete u[f];
    } else if (jsonKind(v) !== kinds[f]) {
      u.problem ??= `"${f}" must be ${kinds[f]}, not ${jsonKind(v)}`;
    } else u[f] = v;
  }
  return u;
}

// objectMembers returns the members of the JSON object text is, in its
// order, as goFields reads them. The text is valid JSON.
export const objectMembers = (text) => elementMembers(`[${text}]`, 1)[0] ?? [];

// elementMembers returns, for each element of the array at depth (as
// elementLines), its members in the file's order as [name, value] pairs
// of JSON text, a name given twice twice, or null for an element that is
// not an object. JSON.parse keeps one member of a name given twice, where
// the first was, with the value of the last; encoding/json, which keyward
// users import reads with, sets the fields one member after the other,
// so {"email": A, "Email": B, "email": C} is C there, and B read in
// JSON.parse's order. The text is valid JSON.
function elementMembers(text, depth) {
  const out = [];
  const n = text.length;
  let d = 0, inArray = false, inString = false, escaped = false;
  let members = null, expectKey = false, keyStart = -1, key = null, valueStart = -1;
  for (let i = 0; i < n; i++) {
    const c = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') {
        inString = false;
        if (keyStart >= 0) {
          key = text.slice(keyStart, i + 1);
          keyStart = -1;
        }
      }
      continue;
    }
    if (c === '"') {
      inString = true;
      if (members && d === depth + 1 && expectKey) {
        keyStart = i;
        expectKey = false;
      } else if (inArray && d === depth) out.push(null); // a string element
    } else if (c === "{" || c === "[") {
      if (inArray && d === depth) { // an element
        members = c === "{" ? [] : null;
        expectKey = c === "{";
        out.push(members);
      }
      d++;
      if (c === "[" && d === depth && !inArray) inArray = true;
    } else if (c === "}" || c === "]") {
      if (members && d === depth + 1) { // the element's end
        if (key !== null) members.push([key, text.slice(valueStart, i)]);
        key = null;
        members = null;
      }
      d--;
      if (inArray && d < depth) break; // the array's end
    } else if (members && d === depth + 1) {
      if (c === ":") valueStart = i + 1;
      else if (c === ",") {
        members.push([key, text.slice(valueStart, i)]);
        key = null;
        expectKey = true;
      }
    } else if (inArray && d === depth && !" \t\r\n,".includes(c)) { // a number, true, false or null
      out.push(null);
      while (i + 1 < n && !" \t\r\n,]".includes(text[i + 1])) i++;
    }
  }
  return out;
}

// elementLines returns the line each element of the array at depth (1 for
// the document's own array, 2 for its "users") begins on. The text is
// valid JSON.
function elementLines(text, depth) {
  const lines = [];
  let d = 0, line = 1, inString = false, escaped = false, expect = false;
  for (const c of text) {
    if (c === "\n") line++;
    if (inString) {
      if (escaped) escaped = false;
      else if (c === "\\") escaped = true;
      else if (c === '"') inString = false;
      continue;
    }
    if (expect && !" \t\r\n,]".includes(c)) {
      lines.push(line);
      expect = false;
    }
    if (c === '"') inString = true;
    else if (c === "[" || c === "{") {
      d++;
      if (c === "[" && d === depth) expect = true;
    } else if (c === "]" || c === "}") d--;
    else if (c === "," && d === depth) expect = true;
  }
  return lines;
}
