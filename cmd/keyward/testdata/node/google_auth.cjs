// Node's google-auth-library against a Keyward key file, unchanged. Prints
// one JSON object for the Go test (TestNodeGoogleAuth) to check:
//
//   - self_signed: the JWT the library puts in the Authorization header when
//     it has no scopes (JWTAccess, "authorization without OAuth"), which an
//     API verifies with Keyward's keys.
//   - token_request: what the library sends for an access token (scopes
//     set). It is caught before it leaves: google-auth-library posts to
//     Google's token URL whatever the key file's token_uri says
//     (build/src/gtoken/getToken.js and jwsSign.js), so the Go test checks
//     that this is still so rather than asking Keyward for a token.
//
// Usage: node google_auth.cjs KEY_FILE AUDIENCE, in this directory, with
// the libraries of its package-lock.json installed (npm ci).
'use strict';
const [keyFile, audience] = process.argv.slice(2);
const { GoogleAuth } = require('google-auth-library');
const { Gaxios } = require('gaxios');

const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString());

(async () => {
  const out = { version: require('google-auth-library/package.json').version };

  const client = await new GoogleAuth({ keyFile }).getClient();
  out.client = client.constructor.name;
  out.universe_domain = client.universeDomain;
  const headers = await client.getRequestHeaders(audience);
  out.self_signed = headers.get('authorization').replace(/^Bearer /, '');

  // The library's own transporter (a gaxios instance), with one interceptor
  // that records the token request and stops it.
  const transporter = new Gaxios();
  const stop = new Error('stopped before sending');
  transporter.interceptors.request.add({
    resolved: async (opts) => {
      const form = new URLSearchParams(opts.data.toString());
      const [header, claims] = form.get('assertion').split('.');
      out.token_request = {
        url: String(opts.url),
        method: opts.method,
        grant_type: form.get('grant_type'),
        header: decode(header),
        claims: decode(claims),
      };
      throw stop;
    },
  });
  const scoped = new GoogleAuth({ keyFile, scopes: ['orders.read'], clientOptions: { transporter } });
  try {
    await scoped.getAccessToken();
    out.token_error = 'getAccessToken returned without a request';
  } catch (e) {
    if (!out.token_request) out.token_error = String(e && e.stack || e);
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
