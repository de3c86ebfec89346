"""The host software stack on a :class:`FakeHost`: IOMMU driver, PF driver, VFIO, VDCM."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from siov_sim.sw.driver import PfDriver
from siov_sim.sw.driver.regs_adi import RegAdiControl
from siov_sim.sw.iommu import IommuDriver
from siov_sim.sw.vdcm import Vdcm
from siov_sim.sw.vfio import Vfio

from .fakes import PF_BDF, FakeHost

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@dataclass
class Stack:
    host: FakeHost
    iommu: IommuDriver
    pf: PfDriver
    vfio: Vfio
    vdcm: Vdcm


async def build(num_adis: int = 8, **pf_kw: Any) -> Stack:
    host = FakeHost(num_adis)
    iommu = IommuDriver(host)
    pf = PfDriver(host, PF_BDF, iommu, RegAdiControl.create, **pf_kw)
    await pf.probe()
    vfio = Vfio(iommu)
    return Stack(host, iommu, pf, vfio, Vdcm(pf, vfio=vfio))
