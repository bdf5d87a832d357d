"""`/v1/credit/features` and `/v1/credit/feature-sets`: definitions and their versions."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from flywheel.plugins.credit import catalog
from flywheel.plugins.credit.contracts import (
    FeatureCreate,
    FeaturePage,
    FeatureRead,
    FeatureSetCreate,
    FeatureSetPage,
    FeatureSetRead,
    FeatureSetVersionCreate,
    FeatureSetVersionRead,
)
from flywheel.plugins.credit.paging import Cursor, Limit, after, next_cursor
from flywheel.server.plugin_api import Caller


class CatalogController(Controller):
    path = "/v1/credit"
    tags = ["credit"]

    @post("/features", operation_id="creditCreateFeature", status_code=201)
    async def create_feature(self, state: State, principal: Caller, data: JSONBody[FeatureCreate]) -> FeatureRead:
        """A feature: source column(s), a transform, an optional monotone direction, and the words
        reason codes use for it."""
        return await catalog.create_feature(state.flywheel.db, principal.tenant_id, data)

    @get("/features", operation_id="creditListFeatures")
    async def list_features(self, state: State, principal: Caller, cursor: Cursor = None,
                            limit: Limit = 50) -> FeaturePage:
        items = await catalog.list_features(state.flywheel.db, principal.tenant_id, after(cursor), limit)
        return FeaturePage(items=items, next_cursor=next_cursor(items, limit))

    @get("/features/{feature_id:uuid}", operation_id="creditGetFeature")
    async def get_feature(self, state: State, principal: Caller, feature_id: FromPath[UUID]) -> FeatureRead:
        return await catalog.get_feature(state.flywheel.db, principal.tenant_id, feature_id)

    @put("/features/{feature_id:uuid}", operation_id="creditUpdateFeature")
    async def update_feature(self, state: State, principal: Caller, feature_id: FromPath[UUID],
                             data: JSONBody[FeatureCreate]) -> FeatureRead:
        """Change a feature no run has used yet (409 `version_in_use` after)."""
        return await catalog.update_feature(state.flywheel.db, principal.tenant_id, feature_id, data)

    @post("/feature-sets", operation_id="creditCreateFeatureSet", status_code=201)
    async def create_feature_set(self, state: State, principal: Caller,
                                 data: JSONBody[FeatureSetCreate]) -> FeatureSetRead:
        """A feature set; with `features`, its version 1 too."""
        db = state.flywheel.db
        set_id = await catalog.create_feature_set(db, principal.tenant_id, data.name, data.description)
        if data.features:
            await catalog.create_set_version(db, principal.tenant_id, set_id, data.features, "$.features")
        return await catalog.get_feature_set(db, principal.tenant_id, set_id)

    @get("/feature-sets", operation_id="creditListFeatureSets")
    async def list_feature_sets(self, state: State, principal: Caller, cursor: Cursor = None,
                                limit: Limit = 50) -> FeatureSetPage:
        items = await catalog.list_feature_sets(state.flywheel.db, principal.tenant_id, after(cursor), limit)
        return FeatureSetPage(items=items, next_cursor=next_cursor(items, limit))

    @get("/feature-sets/{feature_set_id:uuid}", operation_id="creditGetFeatureSet")
    async def get_feature_set(self, state: State, principal: Caller,
                              feature_set_id: FromPath[UUID]) -> FeatureSetRead:
        return await catalog.get_feature_set(state.flywheel.db, principal.tenant_id, feature_set_id)

    @post("/feature-sets/{feature_set_id:uuid}/versions", operation_id="creditCreateFeatureSetVersion",
          status_code=201)
    async def create_feature_set_version(self, state: State, principal: Caller, feature_set_id: FromPath[UUID],
                                         data: JSONBody[FeatureSetVersionCreate]) -> FeatureSetVersionRead:
        """The next version: these features, in this order, as they are defined now."""
        db = state.flywheel.db
        version_id = await catalog.create_set_version(db, principal.tenant_id, feature_set_id, data.features,
                                                      "$.features")
        return await catalog.get_set_version(db, principal.tenant_id, version_id)

    @get("/feature-set-versions/{feature_set_version_id:uuid}", operation_id="creditGetFeatureSetVersion")
    async def get_feature_set_version(self, state: State, principal: Caller,
                                      feature_set_version_id: FromPath[UUID]) -> FeatureSetVersionRead:
        return await catalog.get_set_version(state.flywheel.db, principal.tenant_id, feature_set_version_id)

    @delete("/feature-set-versions/{feature_set_version_id:uuid}", operation_id="creditDeleteFeatureSetVersion",
            status_code=204)
    async def delete_feature_set_version(self, state: State, principal: Caller,
                                         feature_set_version_id: FromPath[UUID]) -> None:
        """Remove a version no run has used (409 `version_in_use` otherwise)."""
        await catalog.delete_set_version(state.flywheel.db, principal.tenant_id, feature_set_version_id)
