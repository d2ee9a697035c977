-- +goose Up
-- The lookups that keep an organization, or a delegated token's subject,
-- off the emails of service accounts (AccountEmailAt) compare emails in
-- lower case: by the whole email, and by its domain, the part after its
-- last @ (as validate.EmailDomain). The project index finds only the
-- accounts whose email is NAME@PROJECT.<domain>, not all an import kept.
-- COLLATE "C" lowers ASCII letters only, as SQLite's lower() and the store
-- (ascii.Lower) do, whatever the database's locale: a Turkish one
-- would lower I to dotless ı, and most lower letters beyond ASCII too.
CREATE INDEX accounts_email_lower ON accounts (lower(email COLLATE "C"));
CREATE INDEX accounts_email_domain ON accounts (lower(substr(email, length(rtrim(email, replace(email, '@', ''))) + 1) COLLATE "C"));

-- +goose Down
-- An earlier release reads by the project index and the email as written.
DROP INDEX accounts_email_domain;
DROP INDEX accounts_email_lower;
