-- The hours a drive powered in the last week were a model input for one
-- release: the backtest on backblaze-april (train to 04-23, its own test
-- split and the week after) scored the same to the last digit without it,
-- so it is no longer computed. No feature day needs rebuilding: the other
-- columns are unchanged.
ALTER TABLE drives_features DROP COLUMN power_on_hours_d7;
