-- Features that generalize and scores at full precision.
--
-- Age now comes from the drive's power-on hours (SMART 9), in 30-day steps,
-- not from its first imported record: a drive imported today is not new.
-- Raw power-on hours are no longer a feature (a tree memorized drives by
-- them); their 7-day change (hours powered in the last week) is.
ALTER TABLE drives_features ALTER COLUMN age_days DROP NOT NULL;
ALTER TABLE drives_features ADD COLUMN power_on_hours_d7 double precision;
-- Every day is rebuilt with the new definitions on the next build.
DELETE FROM drives_feature_days;

-- Risks are float64 probabilities computed from the margin (log-odds), which
-- is stored too and is what lists rank on; `band` is the drive's band by
-- fleet percentile on that day (see drives_settings).
ALTER TABLE drives_risk ALTER COLUMN risk TYPE double precision;
ALTER TABLE drives_risk ADD COLUMN margin double precision;
ALTER TABLE drives_risk ADD COLUMN band text CHECK (band IN ('low', 'medium', 'high'));
CREATE INDEX drives_risk_by_margin ON drives_risk (tenant_id, day, margin DESC, serial_number);
ALTER TABLE drives_inventory ALTER COLUMN risk TYPE double precision;
ALTER TABLE drives_inventory ADD COLUMN margin double precision;
ALTER TABLE drives_inventory ADD COLUMN band text CHECK (band IN ('low', 'medium', 'high'));

-- Per-tenant risk bands: the share of the day's scored drives that is
-- "high" (the riskiest), and the share after those that is "medium".
CREATE TABLE drives_settings (
    tenant_id     uuid             PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    high_share    double precision NOT NULL DEFAULT 0.01 CHECK (high_share > 0 AND high_share <= 0.5),
    medium_share  double precision NOT NULL DEFAULT 0.04 CHECK (medium_share >= 0 AND medium_share <= 0.5)
);
