"""VDCM (Virtual Device Composition Module): mdev-style parent that composes VDEVs from ADIs.

::

    vdcm = Vdcm(pf, vfio=vfio)
    [t.available_instances for t in vdcm.supported_types()]
    vdev = await vdcm.create("siov-4q", str(uuid4()))   # ADIs + PASID + VFIO group
    vdcm.connect(a, b)                                   # switch policy: a and b may SEND
    await vdcm.remove(vdev.uuid)                         # drain -> unbind PASID -> free
"""

from __future__ import annotations

from siov_sim.sw.vdcm.types import DEFAULT_TYPES, MdevType, MdevTypeInfo
from siov_sim.sw.vdcm.vdcm import CyclicIdAllocator, Vdcm, VdcmUsage
from siov_sim.sw.vdcm.vdev import QREG, VREG, Reject, RejectRecord, Vdev

__all__ = [
    "DEFAULT_TYPES",
    "QREG",
    "VREG",
    "CyclicIdAllocator",
    "MdevType",
    "MdevTypeInfo",
    "Reject",
    "RejectRecord",
    "Vdcm",
    "VdcmUsage",
    "Vdev",
]
