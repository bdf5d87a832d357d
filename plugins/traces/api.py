"""`/v1/traces`: create a trace, send its chunks and artifacts, finalize, verify, read.

Every POST honours `Idempotency-Key` (the core's middleware); chunks are
idempotent by number as well, and artifacts by their SHA-256, so a client
that retries without a key is safe too.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Request, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from flywheel.plugins.traces import artifacts, capture, chain, finalize, traces, verify
from flywheel.plugins.traces.contracts import (
    ArtifactRead,
    ChainReport,
    Chunk,
    ChunkResult,
    EventRead,
    Finalize,
    KeyRotated,
    TraceCreate,
    TracePage,
    TraceRead,
)
from flywheel.plugins.traces.timeline import trace_events
from flywheel.server.plugin_api import Caller

Limit = Annotated[int, QueryParameter(ge=1, le=200)]
Status = Annotated[str | None, QueryParameter(pattern=r"^(open|finalized|qa_done|judged)$")]
Cursor = Annotated[str | None, QueryParameter(max_length=1000)]
Kind = Annotated[str, QueryParameter(pattern=r"^(output|report|patch|workspace|log|other)$")]


class TraceController(Controller):
    path = "/v1/traces"
    tags = ["traces"]

    @post("/", operation_id="tracesCreate", status_code=201)
    async def create_trace(self, state: State, principal: Caller, data: JSONBody[TraceCreate]) -> TraceRead:
        return await traces.create_trace(state.flywheel, principal.tenant_id, data)

    @get("/", operation_id="tracesList")
    async def list_traces(self, state: State, principal: Caller, limit: Limit = 50, cursor: Cursor = None,
                          status: Status = None) -> TracePage:
        return await traces.list_traces(state.flywheel, principal.tenant_id, limit=limit, cursor=cursor,
                                        status=status)

    @get("/{trace_id:uuid}", operation_id="tracesGet")
    async def get_trace(self, state: State, principal: Caller, trace_id: FromPath[UUID]) -> TraceRead:
        return await traces.get_trace(state.flywheel, principal.tenant_id, trace_id)

    @post("/{trace_id:uuid}/chunks/{chunk_no:int}", operation_id="tracesAddChunk", status_code=200,
          opt={"scope": "ingest"})
    async def add_chunk(self, state: State, principal: Caller, trace_id: FromPath[UUID], chunk_no: FromPath[int],
                        data: JSONBody[Chunk]) -> ChunkResult:
        return await capture.add_chunk(state.flywheel, principal.tenant_id, trace_id, chunk_no, data)

    @put("/{trace_id:uuid}/artifacts/{sha256:str}", operation_id="tracesPutArtifact", status_code=201,
         opt={"scope": "ingest", "own_body_checks": True})
    async def put_artifact(self, request: Request, state: State, principal: Caller, trace_id: FromPath[UUID],
                           sha256: FromPath[str], kind: Kind = "other") -> ArtifactRead:
        """The body is the artifact's bytes (any content type), checked against `sha256` as it streams."""
        return await artifacts.put_artifact(state.flywheel, principal.tenant_id, trace_id, sha256, kind,
                                            request.stream(), max_bytes=state.flywheel.settings.max_body_bytes)

    @get("/{trace_id:uuid}/artifacts", operation_id="tracesListArtifacts")
    async def list_artifacts(self, state: State, principal: Caller, trace_id: FromPath[UUID]) -> list[ArtifactRead]:
        await traces.get_trace(state.flywheel, principal.tenant_id, trace_id)
        return await artifacts.list_artifacts(state.flywheel, principal.tenant_id, trace_id)

    @get("/{trace_id:uuid}/artifacts/{sha256:str}", operation_id="tracesGetArtifact",
         media_type="application/octet-stream")
    async def get_artifact(self, state: State, principal: Caller, trace_id: FromPath[UUID],
                           sha256: FromPath[str]) -> Stream:
        info = await artifacts.artifact(state.flywheel, principal.tenant_id, trace_id, sha256)
        return Stream(artifacts.read_chunks(state.flywheel, principal.tenant_id, info),
                      media_type="application/octet-stream",
                      headers={"Content-Length": str(info.size), "ETag": f'"{sha256}"'})

    @post("/{trace_id:uuid}/finalize", operation_id="tracesFinalize", status_code=200)
    async def finalize_trace(self, state: State, principal: Caller, trace_id: FromPath[UUID],
                             data: JSONBody[Finalize]) -> TraceRead:
        return await finalize.finalize(state.flywheel, principal.tenant_id, trace_id, data)

    @get("/{trace_id:uuid}/verify", operation_id="tracesVerify")
    async def verify_trace(self, state: State, principal: Caller, trace_id: FromPath[UUID]) -> ChainReport:
        return await verify.verify_chain(state.flywheel, principal.tenant_id, trace_id)

    @get("/{trace_id:uuid}/events", operation_id="tracesEvents")
    async def list_events(self, state: State, principal: Caller, trace_id: FromPath[UUID]) -> list[EventRead]:
        await traces.get_trace(state.flywheel, principal.tenant_id, trace_id)
        return await trace_events(state.flywheel, principal.tenant_id, trace_id)

    @post("/chain-keys/rotate", operation_id="tracesRotateChainKey", status_code=200, opt={"scope": "admin"})
    async def rotate_key(self, state: State, principal: Caller) -> KeyRotated:
        return KeyRotated(version=await chain.rotate(state.flywheel, principal.tenant_id))
