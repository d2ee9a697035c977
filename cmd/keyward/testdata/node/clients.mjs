// Node.js OAuth libraries against Keyward: openid-client (RFC 8414
// discovery, the client-credentials grant with client_secret_basic,
// client_secret_post and private_key_jwt, introspection, revocation) and
// jose (an API verifying the RFC 9068 access token against the JWKS).
// Prints one JSON object for the Go test (TestNodeOAuthClients) to check.
//
// Usage: node clients.mjs BASE CLIENT_ID SECRET KEY_FILE API_ID API_SECRET
import { readFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import * as client from 'openid-client';
import * as jose from 'jose';

const [base, clientId, secret, keyFile, apiId, apiSecret] = process.argv.slice(2);
const insecure = { execute: [client.allowInsecureRequests], algorithm: 'oauth2' };
const out = {};

const discover = (id, auth, secretOrUndefined) =>
  client.discovery(new URL(base), id, secretOrUndefined, auth, insecure);

for (const [name, auth] of [
  ['client_secret_basic', client.ClientSecretBasic(secret)],
  ['client_secret_post', client.ClientSecretPost(secret)],
]) {
  const config = await discover(clientId, auth);
  const tokens = await client.clientCredentialsGrant(config, { scope: 'orders.read' });
  out[name] = { access_token: tokens.access_token, token_type: tokens.token_type, expires_in: tokens.expires_in, scope: tokens.scope };
}

const pem = JSON.parse(readFileSync(keyFile, 'utf8')).private_key;
const privateKey = await jose.importPKCS8(pem, 'RS256');
const pkjwt = await discover(clientId, client.PrivateKeyJwt(privateKey));
const tokens = await client.clientCredentialsGrant(pkjwt, { scope: 'orders.read' });
out.private_key_jwt = { access_token: tokens.access_token, token_type: tokens.token_type, expires_in: tokens.expires_in, scope: tokens.scope };

// A wrong secret: openid-client throws with the server's error code.
try {
  await client.clientCredentialsGrant(await discover(clientId, client.ClientSecretBasic('kw_wrong')));
  out.wrong_secret = '';
} catch (e) {
  // A 401 with a WWW-Authenticate challenge (RFC 6749 §5.2) is thrown as a
  // WWWAuthenticateChallengeError, with the response body unread.
  out.wrong_secret = e.error ?? (await e.response?.json())?.error ?? String(e);
}

// An API verifies the token against the JWKS the metadata names.
const metadata = pkjwt.serverMetadata();
const jwks = jose.createRemoteJWKSet(new URL(metadata.jwks_uri));
const { payload, protectedHeader } = await jose.jwtVerify(out.client_secret_basic.access_token, jwks, {
  issuer: metadata.issuer, audience: 'https://orders.internal', typ: 'at+jwt',
});
out.verified = { client_id: payload.client_id, scope: payload.scope, alg: protectedHeader.alg };

// Introspection by the API, revocation by the client, introspection again.
const api = await discover(apiId, client.ClientSecretBasic(apiSecret));
out.introspected = await client.tokenIntrospection(api, out.client_secret_basic.access_token);
const owner = await discover(clientId, client.ClientSecretBasic(secret));
await client.tokenRevocation(owner, out.client_secret_basic.access_token);
out.after_revoke = await client.tokenIntrospection(api, out.client_secret_basic.access_token);

console.log(JSON.stringify(out));
