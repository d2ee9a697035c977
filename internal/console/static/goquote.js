// Quoting as Go's strconv.Quote quotes, so that the console shows a value
// anyone could choose (an audit event's data, a row of an import file) as
// the CLI shows it: no invisible character (U+200B, U+FEFF), bidirectional
// control or line separator is hidden in a message, or turns it around.

// unprintableRE matches what Go's unicode.IsPrint does not take: anything
// but letters, marks, numbers, punctuation, symbols and the ASCII space.
// (The browser's Unicode may be newer than Go's: a character assigned
// since is printable here and not there.)
const unprintableRE = /[^\p{L}\p{M}\p{N}\p{P}\p{S} ]/u;

// printable is whether s has only characters unicode.IsPrint takes.
export const printable = (s) => !unprintableRE.test(s);

const hex = (n, width) => n.toString(16).padStart(width, "0");

// ESCAPES are the characters strconv.Quote writes with a backslash and a
// letter, or a backslash before them.
const ESCAPES = new Map([["\x07", "\\a"], ["\b", "\\b"], ["\f", "\\f"], ["\n", "\\n"], ["\r", "\\r"], ["\t", "\\t"], ["\v", "\\v"],
  ['"', '\\"'], ["\\", "\\\\"]]);

// quote quotes s as Go's strconv.Quote does: a character that is not
// printable is escaped, as \a…\v, \xhh, \uhhhh or \Uhhhhhhhh (JSON.stringify
// escapes only the C0 controls).
export function quote(s) {
  let out = '"';
  for (const c of s) {
    const r = c.codePointAt(0);
    if (ESCAPES.has(c)) out += ESCAPES.get(c);
    else if (!unprintableRE.test(c)) out += c;
    else if (r < 0x20 || r === 0x7f) out += "\\x" + hex(r, 2);
    else if (r >= 0xd800 && r <= 0xdfff) out += "\\ufffd"; // a lone surrogate, as Go sees invalid UTF-8
    else if (r < 0x10000) out += "\\u" + hex(r, 4);
    else out += "\\U" + hex(r, 8);
  }
  return out + '"';
}

// cell is s itself when it is printable, else quoted, as keyward audit
// list shows every cell of an event's row (auditCells): a value a changed
// database or an imported dump gave a bidirectional override or a line
// break is seen, and turns nothing around. The audit log shows an event's
// action, account, actor and source so; the confirmations name what they
// act on so, and so do the notices that follow the action and the lists,
// headings and fields that show a stored name.
export const cell = (s) => (printable(s) ? s : quote(s));
