"""Served model versions (read scope) and the reload trigger (write scope)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from serving.api.deps import HolderDep, MetricsDep, ReadAccess, WriteAccess
from serving.api.errors import ERROR_RESPONSES
from serving.api.reload import refresh
from serving.schemas import ModelOut, ModelsOut, ReloadOut

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelsOut, dependencies=[ReadAccess])
def models(holder: HolderDep) -> ModelsOut:
    """Names, versions, aliases and load times of the models in service."""
    bundle = holder.current if holder.loaded else None
    served = [] if bundle is None else [(m.ref, m.loaded_at) for m in bundle.models.values()]
    if bundle is not None:
        extra = (bundle.uplift_ref, bundle.outlook_ref)
        served += [(ref, bundle.loaded_at) for ref in extra if ref is not None]
    return ModelsOut(
        models=[
            ModelOut(
                name=ref.name,
                version=ref.version,
                alias=ref.alias,
                run_id=ref.run_id,
                loaded_at=loaded_at,
            )
            for ref, loaded_at in served
        ],
        bundle_loaded_at=bundle.loaded_at if bundle else None,
        last_error=holder.last_error,
    )


@router.post(
    "/admin/reload",
    response_model=ReloadOut,
    dependencies=[WriteAccess],
    responses=ERROR_RESPONSES,
)
async def reload(holder: HolderDep, metrics: MetricsDep) -> ReloadOut:
    """Look for new champions now and swap them in; requests in flight keep their models."""
    swapped = await asyncio.to_thread(refresh, holder, metrics, force=False)
    return ReloadOut(swapped=swapped, models=holder.current.fingerprint)
