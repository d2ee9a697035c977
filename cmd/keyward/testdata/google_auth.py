"""Google's Python client library, used as the seed's server-to-server flow
shows, against a Keyward key file. Prints one JSON object for the Go test
(TestPythonGoogleAuth) to check.

Usage: python3 google_auth.py KEY_FILE API_AUDIENCE SUBJECT
"""
import json
import sys
import time

import google.auth.transport.requests
import jwt
from google.auth import exceptions
from google.auth import jwt as google_jwt
from google.oauth2 import service_account

key_file, audience, subject = sys.argv[1:4]
request = google.auth.transport.requests.Request()
out = {}

# The JWT-bearer grant, with the token_uri of the key file.
credentials = service_account.Credentials.from_service_account_file(
    key_file, scopes=["orders.read"])
credentials.refresh(request)
out["token"] = credentials.token
out["expiry"] = credentials.expiry.isoformat() + "Z"

# Domain-wide delegation: with_subject.
delegated = credentials.with_subject(subject)
delegated.refresh(request)
out["delegated"] = delegated.token

# A scope the account is not allowed: the library raises RefreshError.
try:
    service_account.Credentials.from_service_account_file(
        key_file, scopes=["orders.write"]).refresh(request)
    out["refused"] = ""
except exceptions.RefreshError as e:
    out["refused"] = str(e)

# An ID token (target_audience): refused, saying why.
try:
    service_account.IDTokenCredentials.from_service_account_file(
        key_file, target_audience=audience).refresh(request)
    out["id_token_refused"] = ""
except exceptions.RefreshError as e:
    out["id_token_refused"] = str(e)

# Authorization without OAuth: a self-signed JWT for the API.
self_signed = google_jwt.Credentials.from_service_account_file(
    key_file, audience=audience)
self_signed.refresh(request)
token = self_signed.token
out["self_signed"] = token.decode() if isinstance(token, bytes) else token

# Google's documentation has the API's endpoint as aud, with a trailing
# slash ("https://{host}/").
slash = google_jwt.Credentials.from_service_account_file(
    key_file, audience=audience + "/")
slash.refresh(request)
token = slash.token
out["self_signed_slash"] = token.decode() if isinstance(token, bytes) else token

# OnDemandCredentials take aud from each URL called, before each request
# (as AuthorizedSession calls before_request): the API's root, and a path.
on_demand = google_jwt.OnDemandCredentials.from_service_account_file(key_file)
for name, url in (("on_demand_root", audience + "/"),
                  ("on_demand_path", audience + "/orders?id=1")):
    headers = {}
    on_demand.before_request(request, "GET", url, headers)
    out[name] = headers["authorization"].split(" ", 1)[1]

# The seed's PyJWT example (iat a float, as time.time() gives it).
with open(key_file) as f:
    info = json.load(f)
iat = time.time()
payload = {"iss": info["client_email"], "sub": info["client_email"],
           "aud": audience, "iat": iat, "exp": iat + 3600}
token = jwt.encode(payload, info["private_key"],
                   headers={"kid": info["private_key_id"]}, algorithm="RS256")
out["pyjwt"] = token.decode() if isinstance(token, bytes) else token

print(json.dumps(out))
