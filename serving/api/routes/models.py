"""Served model versions (read scope) and the reload trigger (write scope)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from serving.api.deps import HolderDep, MetricsDep, ReadAccess, WriteAccess
from serving.api.errors import KEYED_RESPONSES
from serving.api.reload import refresh
from serving.schemas import ModelOut, ModelsOut, ReloadOut
from serving.scoring.bundle import ModelBundle

router = APIRouter(prefix="/v1", tags=["models"])


@router.get(
    "/models", response_model=ModelsOut, dependencies=[ReadAccess], responses=KEYED_RESPONSES
)
def models(holder: HolderDep) -> ModelsOut:
    """Names, versions, aliases, load times and recorded quality of the models in service,
    and the optional models not served (activation without a champion) with why."""
    bundle = holder.current if holder.loaded else None
    return ModelsOut(
        models=[] if bundle is None else served(bundle),
        bundle_loaded_at=bundle.loaded_at if bundle else None,
        last_error=holder.last_error,
        not_served={} if bundle is None else bundle.not_served(),
    )


def served(bundle: ModelBundle) -> list[ModelOut]:
    """Every model of `bundle`, uplift and BTYD outlook included, with its quality tags."""
    found = []
    for name, ref in bundle.refs().items():
        model = bundle.get(name)
        quality = ref.quality
        found.append(
            ModelOut(
                name=ref.name,
                version=ref.version,
                alias=ref.alias,
                run_id=ref.run_id,
                loaded_at=bundle.loaded_at if model is None else model.loaded_at,
                quality_grade=quality.grade,
                quality_notes=quality.notes,
                horizon_days=quality.horizon_days,
                label_horizon_days=quality.label_horizon_days,
            )
        )
    return found


@router.post(
    "/admin/reload",
    response_model=ReloadOut,
    dependencies=[WriteAccess],
    responses=KEYED_RESPONSES,
)
async def reload(holder: HolderDep, metrics: MetricsDep) -> ReloadOut:
    """Look for new champions now and swap them in; requests in flight keep their models."""
    swapped = await asyncio.to_thread(refresh, holder, metrics, force=False)
    return ReloadOut(swapped=swapped, models=holder.current.fingerprint)
