-- +goose Up
-- Before deleting an account deleted its delegation grants and removed it
-- from the APIs' introspectors (as it does since), those stayed behind,
-- naming a client ID no account has. They authorize nothing, but they are
-- listed (delegation list, api get) and count as holders of their scopes
-- (api delete). The account's deletion is in the audit log; this removes
-- what it now implies. Client IDs are random 21-digit numbers, never
-- reused, and grants and introspectors are only ever set for existing
-- accounts, so a row naming no account is left over.
DELETE FROM delegation_grant_scopes WHERE client_id NOT IN (SELECT id FROM accounts);
DELETE FROM delegation_grants WHERE client_id NOT IN (SELECT id FROM accounts);
UPDATE apis SET introspectors = (
    SELECT json_group_array(value) FROM (
        SELECT j.value FROM json_each(apis.introspectors) j WHERE j.value IN (SELECT id FROM accounts) ORDER BY j.key))
WHERE EXISTS (SELECT 1 FROM json_each(apis.introspectors) j WHERE j.value NOT IN (SELECT id FROM accounts));

-- +goose Down
-- Nothing to restore.
SELECT 1;
