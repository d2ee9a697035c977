-- +goose Up
-- Organizations (domains) with a directory of users, and the domain-wide
-- delegation their administrators grant to service accounts.
CREATE TABLE orgs (
    domain         TEXT PRIMARY KEY,
    blocked_scopes TEXT NOT NULL DEFAULT '[]',
    created_at     INTEGER NOT NULL
);

CREATE TABLE org_users (
    email      TEXT PRIMARY KEY,
    org        TEXT NOT NULL REFERENCES orgs (domain),
    suspended  INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX org_users_org ON org_users (org, email);

CREATE TABLE project_orgs (
    project  TEXT PRIMARY KEY,
    org      TEXT NOT NULL REFERENCES orgs (domain),
    internal INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE delegation_grants (
    org        TEXT NOT NULL REFERENCES orgs (domain),
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org, client_id)
);

-- +goose Down
DROP TABLE delegation_grants;
DROP TABLE project_orgs;
DROP TABLE org_users;
DROP TABLE orgs;
