-- The example plugin's own tables, in its own migration namespace ("example").
-- Every row carries tenant_id; every query filters on it.

CREATE TABLE example_notes (
    id         uuid        PRIMARY KEY,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title      text        NOT NULL,
    body       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX example_notes_tenant ON example_notes (tenant_id, created_at DESC, id DESC);

CREATE TABLE example_stats (
    tenant_id  uuid        PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    notes      integer     NOT NULL,
    counted_at timestamptz NOT NULL
);
