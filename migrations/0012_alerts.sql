-- Alerts (server/alerts/): what a condition or a monitor found, its state and who
-- acted on it, the tenant's rules (which alerts are kept and where they go), the
-- channels that deliver them, and a log of every delivery attempt.

-- One row per episode: while an alert is open or acknowledged, a repeat of the same
-- (tenant, rule, key) bumps `count` and `last_seen`; once resolved, the next one is a
-- new row (the partial unique index below is what deduplicates).
CREATE TABLE alerts (
    id              uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    rule            text        NOT NULL,
    key             text        NOT NULL,
    severity        text        NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    title           text        NOT NULL,
    details         jsonb       NOT NULL DEFAULT '{}',
    state           text        NOT NULL DEFAULT 'open'
                                CHECK (state IN ('open', 'acknowledged', 'resolved')),
    count           integer     NOT NULL DEFAULT 1,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz NOT NULL DEFAULT now(),
    acknowledged_by text,
    acknowledged_at timestamptz,
    ack_note        text,
    resolved_by     text,
    resolved_at     timestamptz,
    resolve_note    text
);
CREATE UNIQUE INDEX alerts_open_key ON alerts (tenant_id, rule, key) WHERE state <> 'resolved';
CREATE INDEX alerts_tenant_seen ON alerts (tenant_id, last_seen DESC, id DESC);
CREATE INDEX alerts_tenant_state ON alerts (tenant_id, state, last_seen DESC, id DESC);

-- What happened to an alert, oldest first: opened, escalated, acknowledged, resolved.
CREATE TABLE alert_history (
    id         bigserial   PRIMARY KEY,
    alert_id   uuid        NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    action     text        NOT NULL CHECK (action IN ('opened', 'escalated', 'acknowledged', 'resolved')),
    actor      text        NOT NULL,
    note       text,
    severity   text,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_history_alert ON alert_history (alert_id, at, id);

-- Where alerts go. A webhook's signing secret and an e-mail channel's recipients
-- are the channel's; the SMTP server is the tenant's (alert_smtp).
CREATE TABLE alert_channels (
    id            uuid        PRIMARY KEY,
    tenant_id     uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text        NOT NULL,
    kind          text        NOT NULL CHECK (kind IN ('webhook', 'email')),
    url           text,
    recipients    text[]      NOT NULL DEFAULT '{}',
    secret_sealed text,
    enabled       boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

-- Which alerts a tenant keeps and who hears of them. `match` is a rule name
-- (`drives.top_risk_band`), a prefix (`drives.*`) or `*`; the most specific one applies.
CREATE TABLE alert_rules (
    id           uuid        PRIMARY KEY,
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    match        text        NOT NULL,
    enabled      boolean     NOT NULL DEFAULT true,
    min_severity text        NOT NULL DEFAULT 'info' CHECK (min_severity IN ('info', 'warning', 'critical')),
    channel_ids  uuid[]      NOT NULL DEFAULT '{}',
    auto_resolve boolean,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, match)
);

-- The SMTP server a tenant's e-mail channels send through; the password sealed.
CREATE TABLE alert_smtp (
    tenant_id       uuid        PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    host            text        NOT NULL,
    port            integer     NOT NULL,
    security        text        NOT NULL CHECK (security IN ('starttls', 'tls', 'none')),
    username        text,
    password_sealed text,
    sender          text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One row per (alert, channel, event): the receiver sees its id, so a retried POST
-- is recognisably the same delivery. Attempts are logged one row each.
CREATE TABLE alert_deliveries (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    alert_id    uuid        NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel_id  uuid        NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
    event       text        NOT NULL CHECK (event IN ('opened', 'resolved')),
    state       text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts    integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    UNIQUE (alert_id, channel_id, event)
);
CREATE INDEX alert_deliveries_tenant ON alert_deliveries (tenant_id, created_at DESC, id DESC);

CREATE TABLE alert_delivery_attempts (
    id          bigserial   PRIMARY KEY,
    delivery_id uuid        NOT NULL REFERENCES alert_deliveries (id) ON DELETE CASCADE,
    tenant_id   uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms double precision NOT NULL,
    status_code integer,
    error       text
);
CREATE INDEX alert_delivery_attempts_delivery ON alert_delivery_attempts (delivery_id, attempt);
