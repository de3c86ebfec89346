"""Translation caches: context cache, PASID cache and IOTLB.

All three really hold what they cached until an architected invalidation (or capacity eviction)
drops it, so software that forgets an invalidation sees stale translations, as on hardware.
Only successful lookups are cached (CM=0 behaviour; FS faults are never cached anyway).

* context cache: key SID (no DID in scalable mode).
* PASID cache: key (SID, PASID), tagged with the DID of the cached PASID entry.
* IOTLB: key ``(sid, request PASID or -1, PMR, 4K page number)`` so that a hit is one dict lookup;
  a 2M/1G translation is cached fractured (one entry per 4 KiB page used), each entry remembers the
  page it came from, and range invalidations compare against that whole page.
No paging-structure caches are modelled (every IOTLB miss walks from the table root).

An :class:`IotlbObserver` (``Caches.observer``) hears of every IOTLB insert, drop and flush, in
the order they happen, so a copy kept elsewhere (the fast link's C++ IOTLB mirror) can hold
exactly what this IOTLB holds: never an entry the model has dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from siov_sim.model.iommu.entries import ContextEntry, PasidEntry, Pgtt
from siov_sim.model.iommu.walk import Translation

IotlbKey = tuple[int, int, bool, int]


@dataclass(frozen=True, slots=True)
class PasidCacheEntry:
    dir_fpd: bool
    entry: PasidEntry


class IotlbEntry:
    """One cached 4 KiB slice of a translated page."""

    __slots__ = (
        "did", "off_mask", "out_base", "pasid", "pgtt", "read_ok", "sid", "t", "tail", "vbase", "write_ok",
    )  # fmt: skip

    def __init__(self, sid: int, t: Translation, vbase: int, write_ok: bool, read_ok: bool = True) -> None:
        self.sid = sid
        self.did = t.did
        self.pasid = t.pasid
        self.pgtt = t.pgtt
        self.t = t
        self.tail = (t.page_shift, t.did, t.pasid, t.pgtt)  # Translation fields after hpa
        self.vbase = vbase  # input address of the start of the whole (possibly large) page
        self.off_mask = (1 << t.page_shift) - 1
        self.out_base = t.hpa & ~self.off_mask
        self.write_ok = write_ok
        # A second-stage leaf may grant W without R: an entry filled by a write is only known
        # readable when the table has no read permission bit (first stage, pass-through).
        self.read_ok = read_ok

    def overlaps(self, start: int, end: int) -> bool:
        return self.vbase < end and start < self.vbase + self.off_mask + 1


class IotlbObserver(Protocol):
    """Told of every change to the IOTLB (see the module docstring)."""

    def iotlb_put(self, key: IotlbKey, entry: IotlbEntry) -> None: ...
    def iotlb_drop(self, key: IotlbKey) -> None: ...
    def iotlb_clear(self) -> None: ...


class Caches:
    """The unit's caches plus the invalidation operations the queue descriptors map onto."""

    def __init__(self, enabled: bool = True, iotlb_capacity: int = 16384) -> None:
        self.enabled = enabled
        self.iotlb_capacity = iotlb_capacity
        self.context: dict[int, ContextEntry] = {}
        self.pasid: dict[tuple[int, int], PasidCacheEntry] = {}
        self.iotlb: dict[IotlbKey, IotlbEntry] = {}
        # the IOTLB's keys per domain: every invalidation names a DID (or is global), so a DID's
        # entries are found without scanning the whole IOTLB (an ordered set: dict of None)
        self._by_did: dict[int, dict[IotlbKey, None]] = {}
        self.stats = {"iotlb_hit": 0, "iotlb_miss": 0, "ctx_hit": 0, "pasid_hit": 0}
        self.observer: IotlbObserver | None = None

    def flush_all(self) -> None:
        self.context.clear()
        self.pasid.clear()
        self.iotlb.clear()
        self._by_did.clear()
        if self.observer is not None:
            self.observer.iotlb_clear()

    # -------------------------------------------------------------- inserts
    def put_context(self, sid: int, ce: ContextEntry) -> None:
        if self.enabled:
            self.context[sid] = ce

    def put_pasid(self, sid: int, pasid: int, pe: PasidCacheEntry) -> None:
        if self.enabled:
            self.pasid[(sid, pasid)] = pe

    def put_iotlb(self, key: IotlbKey, entry: IotlbEntry) -> None:
        if not self.enabled:
            return
        tlb = self.iotlb
        obs = self.observer
        prev = tlb.get(key)
        if prev is not None:
            if prev.did != entry.did:
                self._unindex(key, prev.did)
        elif len(tlb) >= self.iotlb_capacity:
            old = next(iter(tlb))
            self._unindex(old, tlb.pop(old).did)  # FIFO eviction: hardware may drop any entry at any time
            if obs is not None:
                obs.iotlb_drop(old)
        tlb[key] = entry
        self._by_did.setdefault(entry.did, {})[key] = None
        if obs is not None:
            obs.iotlb_put(key, entry)

    def _unindex(self, key: IotlbKey, did: int) -> None:
        keys = self._by_did[did]
        del keys[key]
        if not keys:
            del self._by_did[did]

    # -------------------------------------------------------------- context cache
    def inv_context_all(self) -> int:
        n = len(self.context)
        self.context.clear()
        return n

    def inv_context_device(self, sid: int, fm: int) -> int:
        mask = ~((1 << fm) - 1 << (3 - fm)) & 0xFFFF if fm else 0xFFFF
        drop = [s for s in self.context if s & mask == sid & mask]
        for s in drop:
            del self.context[s]
        return len(drop)

    # -------------------------------------------------------------- PASID cache
    def inv_pasid(self, pred: Callable[[int, int, PasidCacheEntry], bool]) -> int:
        drop = [k for k, v in self.pasid.items() if pred(k[0], k[1], v)]
        for k in drop:
            del self.pasid[k]
        return len(drop)

    def inv_pasid_all(self) -> int:
        n = len(self.pasid)
        self.pasid.clear()
        return n

    def inv_pasid_did(self, did: int) -> int:
        return self.inv_pasid(lambda _s, _p, e: e.entry.did == did)

    def inv_pasid_did_pasid(self, did: int, pasid: int) -> int:
        return self.inv_pasid(lambda _s, p, e: p == pasid and e.entry.did == did)

    # -------------------------------------------------------------- IOTLB
    def inv_iotlb(self, pred: Callable[[IotlbEntry], bool], did: int | None = None) -> int:
        """Drop the entries ``pred`` selects: among domain ``did``'s entries, or all of them."""
        tlb = self.iotlb
        keys = self._by_did.get(did, {}) if did is not None else tlb
        drop = [k for k in keys if pred(tlb[k])]
        obs = self.observer
        for k in drop:
            self._unindex(k, tlb.pop(k).did)
            if obs is not None:
                obs.iotlb_drop(k)
        return len(drop)

    def inv_iotlb_all(self) -> int:
        n = len(self.iotlb)
        self.iotlb.clear()
        self._by_did.clear()
        if self.observer is not None:
            self.observer.iotlb_clear()
        return n

    def inv_iotlb_did(self, did: int) -> int:
        return self.inv_iotlb(lambda e: True, did)

    def inv_iotlb_psi(self, did: int, addr: int, am: int) -> int:
        """iotlb_inv_dsc G=11: SS/PT entries of DID in range, FS/nested entries of the whole DID."""
        start = addr & ~((1 << (12 + am)) - 1)
        end = start + (1 << (12 + am))
        fs = (Pgtt.FIRST_STAGE, Pgtt.NESTED)
        return self.inv_iotlb(lambda e: e.pgtt in fs or e.overlaps(start, end), did)

    def inv_iotlb_did_pasid(self, did: int, pasid: int) -> int:
        return self.inv_iotlb(lambda e: e.pasid == pasid, did)

    def inv_iotlb_pasid_page(self, did: int, pasid: int, addr: int, am: int) -> int:
        """p_iotlb_inv_dsc G=11: FS/nested entries of DID+PASID in range (SS/PT entries kept)."""
        am = min(am, 52)
        start = addr & ~((1 << (12 + am)) - 1)
        end = start + (1 << (12 + am))
        fs = (Pgtt.FIRST_STAGE, Pgtt.NESTED)
        return self.inv_iotlb(lambda e: e.pasid == pasid and e.pgtt in fs and e.overlaps(start, end), did)
