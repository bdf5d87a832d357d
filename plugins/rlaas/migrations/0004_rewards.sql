-- Rewards and preference pairs: what the reward jobs (rewards.py, pairs.py) derive
-- from interactions, feedback and task results. Every row can be derived again
-- from those tables, so the jobs upsert by natural key and are idempotent.

-- A tenant's reward weights. No row: the defaults in rewards.py.
CREATE TABLE rlaas_reward_settings (
    tenant_id     uuid        PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    -- {"thumbs": w, "rating": w, "edit": w, "task": w}: each signal's weight in the reward.
    weights       jsonb       NOT NULL,
    -- Two interactions with the same prompt make a reward-gap pair when their rewards differ by more.
    pair_min_gap  double precision NOT NULL CHECK (pair_min_gap > 0),
    -- Bumped on every change, so rewards computed with older weights can be found and recomputed.
    version       integer     NOT NULL DEFAULT 1,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- One reward per interaction that has feedback or a task result.
CREATE TABLE rlaas_rewards (
    tenant_id       uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    interaction_id  uuid        NOT NULL,
    reward          double precision NOT NULL,
    -- The signals and weights that produced it: {"weights": {...}, "signals": {...}}.
    inputs          jsonb       NOT NULL,
    weights_version integer     NOT NULL,
    -- The normalized prompt's hash (pairs match prompts by it).
    prompt_hash     text        NOT NULL,
    route           text        NOT NULL,
    policy          text        NOT NULL,
    policy_version  integer     NOT NULL,
    ts              timestamptz NOT NULL,   -- the interaction's time, for exports by date range
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, interaction_id)
);
CREATE INDEX rlaas_rewards_prompt ON rlaas_rewards (tenant_id, prompt_hash, reward);
CREATE INDEX rlaas_rewards_select ON rlaas_rewards (tenant_id, route, ts);

-- Interactions whose reward must be (re)computed: marked when feedback or a task
-- result is committed for them, cleared by the rewards job once done.
CREATE SEQUENCE rlaas_reward_pending_mark;
CREATE TABLE rlaas_reward_pending (
    tenant_id      uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    interaction_id uuid        NOT NULL,
    marked_at      timestamptz NOT NULL DEFAULT now(),
    -- Drawn again on every mark. The job clears a row only if its mark is still the one it read,
    -- so feedback committed while the job computed keeps the interaction pending.
    mark           bigint      NOT NULL DEFAULT nextval('rlaas_reward_pending_mark'),
    PRIMARY KEY (tenant_id, interaction_id)
);

-- A preference: for the prompt of `interaction_id`, `chosen` beats `rejected`.
--   comparison: chosen and rejected are two interactions (a comparison feedback event);
--   edit:       the corrected text (chosen_text) beats the interaction's own answer;
--   reward_gap: two interactions with the same prompt_hash whose rewards differ by > pair_min_gap.
CREATE TABLE rlaas_pairs (
    tenant_id               uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- uuid5 of (source, chosen, rejected, feedback event): the same pair derived twice is one row.
    pair_id                 uuid        NOT NULL,
    source                  text        NOT NULL CHECK (source IN ('comparison', 'edit', 'reward_gap')),
    prompt_hash             text        NOT NULL,
    interaction_id          uuid        NOT NULL,   -- whose prompt (request messages) the pair is for
    chosen_interaction_id   uuid        NOT NULL,
    rejected_interaction_id uuid        NOT NULL,
    chosen_text             text,                   -- an edit's corrected text; NULL: the chosen interaction's answer
    feedback_event_id       uuid,                   -- the comparison or edit that made it
    gap                     double precision,       -- reward_gap pairs: chosen's reward minus rejected's
    route                   text        NOT NULL,
    ts                      timestamptz NOT NULL,   -- the later of the two interactions' times
    created_at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, pair_id)
);
CREATE INDEX rlaas_pairs_select ON rlaas_pairs (tenant_id, route, ts);
CREATE INDEX rlaas_pairs_prompt ON rlaas_pairs (tenant_id, prompt_hash);

-- Keyset pages of the API, newest first (GET /v1/rlaas/rewards, GET /v1/rlaas/pairs).
CREATE INDEX rlaas_rewards_recent ON rlaas_rewards (tenant_id, ts DESC, interaction_id DESC);
CREATE INDEX rlaas_pairs_recent ON rlaas_pairs (tenant_id, ts DESC, pair_id DESC);

-- The normalized prompt's hash (prompts.py), computed in Python when the interaction is projected.
-- Rows stored before this migration have none; the rewards job fills them in before it needs them.
ALTER TABLE rlaas_interactions ADD COLUMN prompt_hash text;
CREATE INDEX rlaas_interactions_unhashed ON rlaas_interactions (tenant_id, interaction_id)
    WHERE prompt_hash IS NULL;

-- An edit's normalized Levenshtein distance to the answer it corrected (0: the same text, 1: nothing
-- in common), computed once per edit event by the rewards job (rapidfuzz) and read by the reward SQL.
CREATE TABLE rlaas_edit_distances (
    tenant_id      uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    event_id       uuid        NOT NULL,   -- the edit's feedback event
    interaction_id uuid        NOT NULL,
    distance       double precision NOT NULL CHECK (distance >= 0 AND distance <= 1),
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX rlaas_edit_distances_interaction ON rlaas_edit_distances (tenant_id, interaction_id);

-- Prompts whose reward-gap pairs must be derived again: a reward of theirs was added, changed or removed.
CREATE TABLE rlaas_pair_pending (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    prompt_hash text NOT NULL,
    PRIMARY KEY (tenant_id, prompt_hash)
);

-- The settings version whose full pass the rewards job finished. No row, or an older version:
-- the next run marks every interaction with feedback or a task result pending first.
CREATE TABLE rlaas_reward_state (
    tenant_id        uuid    PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    computed_version integer NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
