-- Interactions, feedback and task results: the rlaas events projected into
-- tables the interaction views query (projection.py). The events table keeps
-- every event; these rows can be rebuilt from it, so every insert is
-- idempotent (ON CONFLICT DO NOTHING on the row's natural key).
--
-- Feedback and task results name their interaction by id with no foreign key:
-- events arrive in any order (an SDK's feedback can be committed before the
-- gateway's recorder flushes the interaction), and a feedback row must never
-- be lost for that. Views join on (tenant_id, interaction_id).

CREATE TABLE rlaas_interactions (
    tenant_id               uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    interaction_id          uuid        NOT NULL,
    event_id                uuid        NOT NULL,
    ts                      timestamptz NOT NULL,
    route                   text        NOT NULL,
    endpoint                text        NOT NULL,
    -- No foreign key: a policy may be deleted, its interactions stay (training data).
    policy_id               uuid        NOT NULL,
    policy                  text        NOT NULL,
    policy_version          integer     NOT NULL,
    role                    text        NOT NULL CHECK (role IN ('primary', 'shadow')),
    primary_interaction_id  uuid,
    fallback_from_policy_id uuid,
    user_hash               text,       -- the event's subject_id: users.user_hash(tenant, user)
    session_id              text,
    stream                  boolean     NOT NULL,
    status                  integer     NOT NULL,
    latency_ms              double precision NOT NULL,
    ttft_ms                 double precision,
    prompt_tokens           bigint,
    completion_tokens       bigint,
    tokens_counted          boolean     NOT NULL,
    request                 jsonb       NOT NULL,
    response                jsonb,
    error                   text,
    attributes              jsonb       NOT NULL DEFAULT '{}',
    recorded_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, interaction_id)
);
-- Keyset pagination, newest first, and one index per selective filter with the same order,
-- so a filtered page is an index range scan too. Role and has-feedback filter within these.
CREATE INDEX rlaas_interactions_recent ON rlaas_interactions (tenant_id, ts DESC, interaction_id DESC);
CREATE INDEX rlaas_interactions_route ON rlaas_interactions (tenant_id, route, ts DESC, interaction_id DESC);
CREATE INDEX rlaas_interactions_policy
    ON rlaas_interactions (tenant_id, policy, policy_version, ts DESC, interaction_id DESC);
CREATE INDEX rlaas_interactions_user ON rlaas_interactions (tenant_id, user_hash, ts DESC, interaction_id DESC)
    WHERE user_hash IS NOT NULL;
-- A shadow call's primary: comparing policies on the same request.
CREATE INDEX rlaas_interactions_primary ON rlaas_interactions (tenant_id, primary_interaction_id)
    WHERE primary_interaction_id IS NOT NULL;

-- One row per feedback event. The signal's parts are columns so that rewards and
-- preference pairs are SQL: thumbs up/down is value 1/-1, a rating its 1..5; an edit
-- keeps the corrected text; a comparison the other interaction and which one won.
CREATE TABLE rlaas_feedback (
    tenant_id            uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    event_id             uuid        NOT NULL,
    interaction_id       uuid        NOT NULL,
    ts                   timestamptz NOT NULL,
    kind                 text        NOT NULL CHECK (kind IN ('thumbs', 'rating', 'edit', 'comparison')),
    value                smallint,
    corrected_text       text,
    other_interaction_id uuid,
    preferred            text        CHECK (preferred IN ('this', 'other', 'tie')),
    comment              text,
    subject_id           text,
    attributes           jsonb       NOT NULL DEFAULT '{}',
    recorded_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id),
    CHECK (CASE kind
               WHEN 'thumbs' THEN value IN (-1, 1)
               WHEN 'rating' THEN value BETWEEN 1 AND 5
               WHEN 'edit' THEN corrected_text IS NOT NULL
               ELSE other_interaction_id IS NOT NULL AND preferred IS NOT NULL
           END)
);
-- An interaction's feedback (the detail view, and the has-feedback filter's EXISTS).
CREATE INDEX rlaas_feedback_interaction ON rlaas_feedback (tenant_id, interaction_id, ts);

-- One row per task-result event: how the task an interaction served ended.
CREATE TABLE rlaas_task_results (
    tenant_id      uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    event_id       uuid        NOT NULL,
    interaction_id uuid        NOT NULL,
    ts             timestamptz NOT NULL,
    task           text        NOT NULL,
    outcome        text        NOT NULL CHECK (outcome IN ('success', 'failure', 'partial', 'abandoned')),
    score          double precision,
    details        jsonb       NOT NULL DEFAULT '{}',
    subject_id     text,
    attributes     jsonb       NOT NULL DEFAULT '{}',
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX rlaas_task_results_interaction ON rlaas_task_results (tenant_id, interaction_id, ts);
