-- +goose Up
-- One row per scope an account holds and per scope a delegation grant
-- grants. The JSON lists in accounts.scopes and delegation_grants.scopes
-- stay what is read back; these tables index them by scope, so the store
-- finds an API's holders, or the enabled holders of the admin scope, with
-- index lookups instead of decoding every account, and matches scopes
-- exactly (keyward.admin is not keyward.admin.read).
CREATE TABLE account_scopes (
    scope      TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    PRIMARY KEY (scope, account_id)
);
CREATE INDEX account_scopes_account ON account_scopes (account_id);
INSERT INTO account_scopes (scope, account_id)
SELECT DISTINCT j.value, a.id FROM accounts a, json_each(a.scopes) j;

CREATE TABLE delegation_grant_scopes (
    scope     TEXT NOT NULL,
    org       TEXT NOT NULL,
    client_id TEXT NOT NULL,
    PRIMARY KEY (scope, org, client_id),
    FOREIGN KEY (org, client_id) REFERENCES delegation_grants (org, client_id) ON DELETE CASCADE
);
CREATE INDEX delegation_grant_scopes_grant ON delegation_grant_scopes (org, client_id);
INSERT INTO delegation_grant_scopes (scope, org, client_id)
SELECT DISTINCT j.value, g.org, g.client_id FROM delegation_grants g, json_each(g.scopes) j;

-- +goose Down
DROP TABLE delegation_grant_scopes;
DROP TABLE account_scopes;
