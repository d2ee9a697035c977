// Signing in: with a service-account key file, whose private key signs a
// JWT-bearer assertion (RFC 7523 §2.1) here in the browser with WebCrypto,
// or with an access token pasted as it is.

import { ApiError, request, admin, signIn, beginSignIn } from "./api.js";
import { goFields, objectMembers } from "./userimport.js";

// The admin API's scope (internal/admin.AdminScope).
const ADMIN_SCOPE = "keyward.admin";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLIENT_ASSERTION_JWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

const fail = (msg) => { throw new ApiError(0, "console", msg); };

// LEFT is the error of a sign-in begun before the page was left.
const LEFT = "The sign-in begun before the page was left was not completed: sign in again.";

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const b64urlJSON = (v) => b64url(new TextEncoder().encode(JSON.stringify(v)));

// KEY_FILE_FIELDS are the fields of a key file (client.KeyFile), each a
// string.
const KEY_FILE_FIELDS = Object.fromEntries(["type", "project_id", "private_key_id", "private_key", "client_email", "client_id", "auth_uri",
  "token_uri", "client_x509_cert_url"].map((f) => [f, "a string"]));

// parseKeyFile reads and checks the fields of a JSON key file, as keyward
// reads them (encoding/json into client.KeyFile, as goFields reads them):
// a name the same but for case is its field's ("Client_Email"), the last
// of a field's names in the file counts, null leaves a field unset, and a
// field's value must be a string.
export function parseKeyFile(text) {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    fail("That file is not JSON; choose a service-account key file (the output of keyward keys create).");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) fail("That file is not a JSON object; choose a service-account key file.");
  const kf = goFields(objectMembers(text), KEY_FILE_FIELDS);
  if (kf.problem) fail(`That file is not a JSON key file: ${kf.problem}.`);
  for (const f of ["client_email", "private_key"]) {
    if (!kf[f]) {
      fail(`The key file has no ${f}; it must be a service-account key file with a private key (keyward keys create).`);
    }
  }
  // The key's ID, the assertion's kid, may be left out, as keyward's
  // client leaves it out then: the server tries the account's keys.
  return kf;
}

// keyDER decodes the DER bytes of a key file's private_key as keyward
// reads it (keyfile.ParsePrivateKey, as golang.org/x/oauth2 does): its
// first PEM block, or the one after an EC PARAMETERS block, whatever its
// type says: PKCS #8 (PRIVATE KEY) or a PKCS #1 RSA key (RSA PRIVATE KEY,
// as openssl genrsa wrote it). It returns the bytes and the block's type.
function keyDER(pem) {
  const re = /-----BEGIN ([^\r\n-]*)-----([^-]*)-----END \1-----/g;
  let m = re.exec(pem);
  if (m?.[1] === "EC PARAMETERS") m = re.exec(pem);
  if (!m) fail("The key file's private_key is not a PEM private key (-----BEGIN PRIVATE KEY-----).");
  if (["CERTIFICATE", "PUBLIC KEY", "RSA PUBLIC KEY"].includes(m[1])) {
    fail(`The key file's private_key is a ${m[1].toLowerCase()}, not a private key.`);
  }
  try {
    return { der: Uint8Array.from(atob(m[2].replace(/\s+/g, "")), (c) => c.charCodeAt(0)), type: m[1] };
  } catch {
    fail("The key file's private_key is not valid base64 inside its PEM block.");
  }
}

// CONVERT says how to write the private keys of these PEM types as PKCS #8,
// which keyward reads and they are not (keyfile.convertHint).
const CONVERT = {
  "EC PRIVATE KEY": "a SEC 1 EC key: write it as PKCS #8 with 'openssl pkey -in FILE -out NEW'",
  "ENCRYPTED PRIVATE KEY": "an encrypted key: write it unencrypted with 'openssl pkey -in FILE -out NEW'",
};

// pkcs1To8 wraps a PKCS #1 RSA private key in PKCS #8 (RFC 5208), which
// WebCrypto imports: SEQUENCE { INTEGER 0, SEQUENCE { rsaEncryption,
// NULL }, OCTET STRING { the key } }.
function pkcs1To8(der) {
  const len = (n) => (n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  const tlv = (tag, body) => [tag, ...len(body.length), ...body];
  const rsaEncryption = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
  return Uint8Array.from(tlv(0x30, [0x02, 0x01, 0x00, ...rsaEncryption, ...tlv(0x04, [...der])]));
}

// importKey imports an RSA key for RS256 or a P-256 key for ES256, in
// PKCS #8, or an RSA key in PKCS #1, from the PEM block of type.
async function importKey({ der, type }) {
  const tries = [
    ["RS256", der, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }],
    ["ES256", der, { name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
    ["RS256", pkcs1To8(der), { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }],
  ];
  for (const [alg, bytes, importAlg, signAlg] of tries) {
    try {
      const key = await crypto.subtle.importKey("pkcs8", bytes, importAlg, false, ["sign"]);
      return { alg, key, signAlg };
    } catch {
      // Not this kind of key; try the next.
    }
  }
  if (CONVERT[type]) fail(`The key file's private key (${type}) is neither a PKCS #8 nor a PKCS #1 key: it is ${CONVERT[type]}.`);
  fail("The key file's private key is neither an RSA key nor an ECDSA P-256 key, the kinds Keyward accepts (RS256, ES256).");
}

// withKeyFile signs in with the text of a key file. left, from
// beginSignIn, tells whether the page was left since the sign-in began:
// then it fails, and revokes the token it obtained.
export async function withKeyFile(text, left = beginSignIn()) {
  if (!globalThis.crypto?.subtle) {
    fail("This browser offers no WebCrypto here: the page must be opened over HTTPS (or on localhost). Sign in with an access token instead.");
  }
  const kf = parseKeyFile(text);
  const { alg, key, signAlg } = await importKey(keyDER(kf.private_key));

  // The audiences come from this server's metadata (RFC 8414): the token
  // endpoint for the JWT-bearer grant's assertion, as the key file's
  // token_uri, and the issuer for client assertions
  // (draft-ietf-oauth-rfc7523bis), which a server with
  // --strict-client-assertion-audience requires. Its Date header corrects
  // a browser clock that is off.
  const meta = await request("GET", "/.well-known/oauth-authorization-server", { auth: false });
  const tokenEndpoint = meta.data?.token_endpoint;
  if (typeof tokenEndpoint !== "string") fail("The server's metadata names no token_endpoint.");
  const issuer = meta.data?.issuer;
  if (typeof issuer !== "string") fail("The server's metadata names no issuer.");
  const skew = clockSkew(meta.date);
  // sign returns a JWT of the key file's key with claims, for aud,
  // issued now, for five minutes, with a jti of its own.
  const sign = async (claims, aud) => {
    const iat = Math.floor((Date.now() + skew) / 1000);
    const jti = b64url(crypto.getRandomValues(new Uint8Array(16)));
    const input = b64urlJSON({ alg, typ: "JWT", ...(kf.private_key_id ? { kid: kf.private_key_id } : {}) }) + "." +
      b64urlJSON({ ...claims, aud, iat, exp: iat + 300, jti });
    const sig = await crypto.subtle.sign(signAlg, key, new TextEncoder().encode(input));
    return input + "." + b64url(sig);
  };

  // A token asked for again is another: one left unanswered expires
  // unused, so a timeout says to try again (change: false).
  const resp = await request("POST", "/token", {
    auth: false, change: false, form: { grant_type: JWT_BEARER, assertion: await sign({ iss: kf.client_email, scope: ADMIN_SCOPE }, tokenEndpoint) },
  });
  const tok = resp.data;
  if (typeof tok?.access_token !== "string") fail("The token endpoint answered without an access token.");
  let who;
  try {
    who = await whoAmI(tok.access_token);
  } catch (e) {
    // The admin API refuses the token (the account is no administrator
    // any more, say), or whoami failed: the token will not be used, so it
    // is revoked, and whoami's error is the one shown, at once.
    revokeUnused(tok.access_token, (claims) => sign(claims, issuer), kf.client_email);
    throw e;
  }
  if (left()) {
    revokeUnused(tok.access_token, (claims) => sign(claims, issuer), kf.client_email);
    fail(LEFT);
  }
  // The token's jti, JWT or opaque, lets sign-out revoke it.
  signIn(tok.access_token, who.me, who.expiresAt, who.me.token.jti);
}

// revokeUnused revokes a token the console obtained and will not use, at
// the revocation endpoint (RFC 7009 §2.1), authenticated as the token's
// own client with a client assertion of the key file's key
// (private_key_jwt, RFC 7523 §2.2: iss = sub = the account; sign makes it
// for the issuer). Nobody waits
// for it, and it fails quietly: the token never left this page, and
// expires with the account's token lifetime.
function revokeUnused(token, sign, client) {
  sign({ iss: client, sub: client })
    .then((assertion) => request("POST", "/revoke", {
      auth: false,
      form: { token, client_assertion_type: CLIENT_ASSERTION_JWT, client_assertion: assertion },
    }))
    .catch(() => {});
}

// withToken signs in with a pasted access token, after checking that the
// admin API accepts it (an expired or revoked token is refused there). It
// fails if the page was left meanwhile (beginSignIn); the token, which
// may be in use elsewhere too, is not revoked.
export async function withToken(raw) {
  const left = beginSignIn();
  const token = raw.trim().replace(/^Bearer\s+/i, "");
  if (token === "") fail("Paste an access token first.");
  if (!/^[\x21-\x7e]+$/.test(token)) fail("An access token is one word of plain ASCII, without spaces or line breaks; paste just the token.");
  const { me, expiresAt } = await whoAmI(token);
  if (left()) fail(LEFT);
  signIn(token, me, expiresAt);
}

// whoAmI asks the admin API whose token it is and when it expires
// (GET /v1/whoami): the server knows, of an opaque token too, and its
// answer is also the check that the admin API takes the token. expiresAt
// counts the seconds left from before the request, on this browser's
// clock: a clock that is off does not matter, and the page never outlives
// the token.
async function whoAmI(token) {
  const sent = Date.now();
  const me = (await request("GET", "/v1/whoami", { auth: token })).data;
  if (typeof me?.email !== "string" || typeof me?.client_id !== "string" || typeof me?.token?.expires_in !== "number") {
    fail("The server's answer to GET /v1/whoami names no administrator or expiry; is the server older than this page?");
  }
  return { me, expiresAt: sent + me.token.expires_in * 1000 };
}

// clockSkew returns how far the server's clock, as its Date header gives
// it, is ahead of the browser's, when that is more than 30 seconds; else 0.
function clockSkew(date) {
  const skew = Date.parse(date) - Date.now();
  return Math.abs(skew) > 30000 ? skew : 0;
}
