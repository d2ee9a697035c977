"""Generic OAuth 2.0 client libraries for Python — Authlib and
requests-oauthlib, as Debian packages them — against Keyward's
client-credentials grant, introspection and revocation, and PyJWT verifying
the access token as an API would. Prints one JSON
object for the Go test (TestPythonOAuthClients) to check.

Usage: python3 oauth_clients.py BASE CLIENT_ID SECRET KEY_FILE API_ID API_SECRET
"""
import json
import os
import sys

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session as OAuthlibSession

base, client_id, secret, key_file, api_id, api_secret = sys.argv[1:7]
token_url = base + "/token"
out = {}

# Authlib, each client authentication method it has for this grant.
for method in ["client_secret_basic", "client_secret_post"]:
    session = OAuth2Session(client_id, secret, token_endpoint_auth_method=method,
                            scope="orders.read")
    out[method] = session.fetch_token(token_url, grant_type="client_credentials")

with open(key_file) as f:
    private_key = json.load(f)["private_key"]
session = OAuth2Session(client_id, private_key, token_endpoint_auth_method="private_key_jwt",
                        scope="orders.read")
session.register_client_auth_method(PrivateKeyJWT(token_url))
out["private_key_jwt"] = session.fetch_token(token_url, grant_type="client_credentials")

# A wrong secret: Authlib raises OAuthError with the server's error code.
try:
    OAuth2Session(client_id, "kw_wrong").fetch_token(token_url, grant_type="client_credentials")
    out["wrong_secret"] = ""
except OAuthError as e:
    out["wrong_secret"] = e.error

# requests-oauthlib's backend application flow (it refuses http unless told).
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
oauthlib_session = OAuthlibSession(client=BackendApplicationClient(client_id=client_id))
token = oauthlib_session.fetch_token(
    token_url, client_id=client_id, client_secret=secret, scope=["orders.read"])
token["scope"] = " ".join(token["scope"])  # oauthlib parses it into a list
out["requests_oauthlib"] = token

# An API verifying the access token with PyJWT against the JWKS that the
# RFC 8414 metadata names.
token = out["client_secret_basic"]["access_token"]
metadata = requests.get(base + "/.well-known/oauth-authorization-server").json()
key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=["ES256"],
                    audience="https://orders.internal", issuer=metadata["issuer"])
out["verified"] = {"client_id": claims["client_id"], "scope": claims["scope"],
                   "alg": jwt.get_unverified_header(token)["alg"]}

# Introspection by the API, revocation by the client, introspection again.
api = OAuth2Session(api_id, api_secret)
out["introspected"] = api.introspect_token(base + "/introspect", token=token).json()
client = OAuth2Session(client_id, secret)
client.revoke_token(base + "/revoke", token=token,
                    token_type_hint="access_token").raise_for_status()
out["after_revoke"] = api.introspect_token(base + "/introspect", token=token).json()

print(json.dumps(out))
