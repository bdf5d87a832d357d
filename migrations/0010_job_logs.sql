-- What a job logged while it ran (its own lines and its libraries' warnings),
-- kept with the job: `GET /v1/jobs/{id}` and the console's job page show it.
-- Bounded by the runner (server/jobs/logs.py), so a chatty job cannot grow a row.
ALTER TABLE jobs ADD COLUMN logs text;
