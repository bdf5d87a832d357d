"""The rlaas plugin's settings and its upstream allow-list."""

from __future__ import annotations

import pytest

from flywheel.plugins.rlaas.settings import load, upstream_url_problem


def test_settings_read_and_bad_values_name_their_variable():
    s = load({"FLYWHEEL_RLAAS_SHADOW_CONCURRENCY": "3", "FLYWHEEL_RLAAS_UPSTREAM_HOSTS": "API.openai.com, vllm.lan"})
    assert s.shadow_concurrency == 3 and s.upstream_hosts == ["api.openai.com", "vllm.lan"]
    assert load({}).upstream_hosts == ["*"]
    with pytest.raises(ValueError, match="FLYWHEEL_RLAAS_SHADOW_CONCURRENCY"):
        load({"FLYWHEEL_RLAAS_SHADOW_CONCURRENCY": "lots"})
    with pytest.raises(ValueError, match="FLYWHEEL_RLAAS_UPSTREAM_TIMEOUT_S"):
        load({"FLYWHEEL_RLAAS_UPSTREAM_TIMEOUT_S": "-1"})


@pytest.mark.parametrize("url, allowed, problem", [
    ("https://api.openai.com/v1", ["*"], None),
    ("https://x.openai.azure.com/v1", ["*.openai.azure.com"], None),
    ("https://evil.example.com/v1", ["*.openai.azure.com"], "not in FLYWHEEL_RLAAS_UPSTREAM_HOSTS"),
    ("http://127.0.0.1:8000/v1", ["*"], "private, loopback or link-local"),
    ("http://127.0.0.1:8000/v1", ["127.0.0.1"], None),
    ("http://169.254.169.254/latest", ["*"], "private"),
    ("http://[::1]:8000/v1", ["*"], "private"),
    ("http://10.1.2.3/v1", ["*", "10.*"], "private"),  # a pattern never opens a private address
    ("http://metadata.google.internal/v1", ["*"], "private"),
    ("http://localhost:11434/v1", ["*"], "private"),
    ("file:///etc/passwd", ["*"], "http:// or https://"),
    ("https://user:pw@api.openai.com/v1", ["*"], "credentials"),
    ("https://api.openai.com/v1?x=1", ["*"], "no query"),
    ("https://api.openai.com:99999/v1", ["*"], "port"),
])
def test_upstream_allow_list(url, allowed, problem):
    found = upstream_url_problem(url, allowed)
    assert (found is None) if problem is None else (found is not None and problem in found), found
