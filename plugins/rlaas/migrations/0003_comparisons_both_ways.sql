-- A pairwise comparison is one feedback event on one interaction that names
-- the other (`other_interaction_id`); the other interaction's detail shows it
-- too, found through this index.
CREATE INDEX rlaas_feedback_other_interaction ON rlaas_feedback (tenant_id, other_interaction_id, ts)
    WHERE other_interaction_id IS NOT NULL;
