"""The traces pages of the console: the list (status, QA, score) and one trace as a timeline.

They read through the same functions as `/v1/traces`.
"""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Template

from flywheel.plugins.traces.artifacts import blob_key, list_artifacts
from flywheel.plugins.traces.timeline import trace_events
from flywheel.plugins.traces.traces import get_trace, list_traces
from flywheel.plugins.traces.verify import verify_chain
from flywheel.server.plugin_api import Caller, tenant_store

_LOG_SHOWN = 20_000


async def trace_list(state: State, principal: Caller) -> Template:
    page = await list_traces(state.flywheel, principal.tenant_id, limit=100)
    statuses: dict[str, int] = {}
    for t in page.items:
        statuses[t.status] = statuses.get(t.status, 0) + 1
    return Template("traces/list.html", context={"traces": page.items, "statuses": statuses})


class TracePages(Controller):
    path = "/traces"

    @get("/{trace_id:uuid}", name="traces-detail")
    async def detail(self, state: State, principal: Caller, trace_id: FromPath[UUID]) -> Template:
        app, tenant = state.flywheel, principal.tenant_id
        trace = await get_trace(app, tenant, trace_id)
        events = await trace_events(app, tenant, trace_id, limit=2000)
        chain = await verify_chain(app, tenant, trace_id)
        log = ""
        if trace.qa is not None and trace.qa.log_sha256:
            data = await tenant_store(app, tenant).get_range(blob_key(trace.qa.log_sha256), 0, _LOG_SHOWN)
            log = data.decode("utf-8", errors="replace")
        return Template("traces/detail.html", context={
            "trace": trace, "events": events, "chain": chain, "qa_log": log,
            "artifacts": await list_artifacts(app, tenant, trace_id)})
