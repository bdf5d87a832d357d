"""Model monitoring, for every model family: drift, calibration and operations, day by day.

- `bins.py`: a version's training distribution (quantile bins per feature and
  for the score), and counting rows into the same bins
- `reference.py`: storing it with the version at training time, reading it back
- `recorder.py`: the scoring path's in-process counts, flushed every few seconds
- `latency.py`: the fixed latency buckets those counters use
- `stats.py`: PSI, missing rates and calibration, as plain functions
- `sources.py`: where a day's scored rows and labels come from (counts or the family's hooks)
- `figures.py`: one version-day's figures; `thresholds.py`: what counts as drift
- `jobs.py`: the daily job and backfills; `alerting.py`: alerts for what crossed a threshold
- `api.py`, `cli.py`, `heatmap.py`: the API, the CLI and the console's heat map

docs/monitoring.md explains the choices and their measured costs.
"""
