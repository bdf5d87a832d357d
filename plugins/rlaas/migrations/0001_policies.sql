-- Policies: for one tenant and one route (the model name clients ask for), which
-- upstream answers. Each (route, name, version) is one row; its status moves
-- shadow -> canary -> active -> retired. Upstream credentials are sealed with
-- FLYWHEEL_SECRET_KEY (Fernet) and never leave the server.

CREATE TABLE rlaas_policies (
    id                uuid        PRIMARY KEY,
    tenant_id         uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    route             text        NOT NULL,
    name              text        NOT NULL,
    version           integer     NOT NULL CHECK (version >= 1),
    status            text        NOT NULL CHECK (status IN ('shadow', 'canary', 'active', 'retired')),
    base_url          text        NOT NULL,
    upstream_model    text        NOT NULL,
    adapter_id        text,
    -- header name -> value, sealed as one JSON object (values may be credentials too).
    headers_sealed    text,
    header_names      text[]      NOT NULL DEFAULT '{}',
    api_key_sealed    text,
    canary_share      double precision CHECK (canary_share > 0 AND canary_share < 1),
    description       text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, route, name, version),
    CHECK ((status = 'canary') = (canary_share IS NOT NULL))
);
-- At most one active and one canary policy answer a route.
CREATE UNIQUE INDEX rlaas_policies_one_active ON rlaas_policies (tenant_id, route) WHERE status = 'active';
CREATE UNIQUE INDEX rlaas_policies_one_canary ON rlaas_policies (tenant_id, route) WHERE status = 'canary';
CREATE INDEX rlaas_policies_list ON rlaas_policies (tenant_id, created_at, id);

-- Every change, who made it, and the policy before and after (secrets masked).
CREATE TABLE rlaas_policy_audit (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    policy_id   uuid        NOT NULL,
    action      text        NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    actor_key_id uuid,
    at          timestamptz NOT NULL DEFAULT now(),
    before      jsonb,
    after       jsonb
);
CREATE INDEX rlaas_policy_audit_list ON rlaas_policy_audit (tenant_id, policy_id, id);
