"""`/v1/drives/settings`: the tenant's risk-band shares (`drives_settings`), read by the scoring job.

Reading needs `read`; changing needs `admin` (bands decide which drives people are told to replace).
"""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, put
from litestar.datastructures import State
from litestar.params import JSONBody

from flywheel.plugins.drives.contracts import RiskBands
from flywheel.plugins.drives.scoring import band_shares
from flywheel.server.plugin_api import Caller


async def read_bands(db, tenant_id: UUID) -> RiskBands:
    high, medium = await band_shares(db, tenant_id)
    return RiskBands(high_share=high, medium_share=medium)


async def write_bands(db, tenant_id: UUID, bands: RiskBands) -> RiskBands:
    await db.execute(
        """INSERT INTO drives_settings (tenant_id, high_share, medium_share) VALUES ($1, $2, $3)
           ON CONFLICT (tenant_id) DO UPDATE SET high_share = EXCLUDED.high_share,
                                                 medium_share = EXCLUDED.medium_share""",
        tenant_id, bands.high_share, bands.medium_share)
    return bands


class DriveSettingsController(Controller):
    # A path without parameters: Litestar matches it before DriveController's `/{serial:path}`.
    path = "/v1/drives/settings"
    tags = ["drives"]

    @get("/", operation_id="drivesGetSettings")
    async def get_settings(self, state: State, principal: Caller) -> RiskBands:
        """The tenant's risk bands (the defaults until an admin sets them)."""
        return await read_bands(state.flywheel.db, principal.tenant_id)

    @put("/", operation_id="drivesPutSettings", opt={"scope": "admin"})
    async def put_settings(self, state: State, principal: Caller, data: JSONBody[RiskBands]) -> RiskBands:
        """Set the risk bands (scope `admin`); the next scoring run uses them."""
        return await write_bands(state.flywheel.db, principal.tenant_id, data)
