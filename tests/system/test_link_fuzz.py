"""Link fuzzer: random and malformed TLPs into the RTL's config and BAR spaces, interleaved with
legal traffic (``run_bandwidth``: VDEVs of the ``make sim`` kinds moving checked COPYs).

What must hold, whatever arrives (seeded; the seed is printed and ``COCOTB_RANDOM_SEED`` reruns it):

* nothing hangs: the legal traffic completes with every byte checked, the endpoint answers after;
* every non-posted request gets **exactly one** completion when it is well formed, **at most one**
  when it is malformed (dropped or UR are both spec behaviour there), posted requests none;
* completions for rules the spec fixes carry the right status and type (config to a function the
  device does not have, Cfg type 1, I/O, locked reads, reads outside every BAR, atomics: UR;
  a locked read is answered with CplLk);
* no state outside what the rules allow changes: the 4 KiB config space is the same before and
  after except the RW1C error/status bits the fuzz may set; a poisoned or malformed write does not
  reach a register (the scratch register keeps its value);
* with PASID Enable cleared, a PASID-prefixed read is UR, a prefixed write is dropped, and reads
  without a prefix still complete;
* the RTL sends nothing malformed and breaks no ordering rule (``env.ep.protocol_errors``).

Fuzz requests use their own requester ID (00:1f.7), so their completions are told apart from the
root complex's own and taken off the link by a tap.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import cocotb
import pytest
from cocotb.triggers import ClockCycles, Combine, Timer

from siov_sim.model.mem import FlatHostMemory
from siov_sim.model.pcie.cfgspace import ConfigSpace
from siov_sim.tb.cfgdump import read_config_space
from siov_sim.tb.env import Env
from siov_sim.tb.pcie.ep_device import TlpFrame
from siov_sim.tb.runner import run_rtl

NUM_ADI = 16
FUZZ_RID = 0x00FF  # 00:1f.7: not the root complex's own ID
N_FUZZ = int(os.environ.get("SIOV_FUZZ_N", "160"))  # tags 0..N-1, one per request (N <= 256)
SCRATCH = 0x30
SCRATCH_VALUE = 0x5A5A_1234
PASID_PREFIX = 0x9100_0000  # E2E prefix, type PASID
CPL_SC, CPL_UR = 0, 1
TYPE_CPL, TYPE_CPLLK = 0b01010, 0b01011


@dataclass
class Req:
    kind: str
    frame: TlpFrame
    tag: int
    nonposted: bool
    wellformed: bool  # exactly one completion (NP) / none (posted); else at most one
    status: set[int] | None = None  # allowed completion statuses (None: any)
    cpl_type: int | None = None  # required completion Type


def _hdr(*dws: int) -> int:
    d = [*dws, 0, 0, 0][:4]
    return (d[0] << 96) | (d[1] << 64) | (d[2] << 32) | d[3]


def _dw0(fmt: int, typ: int, length: int, ep: bool = False) -> int:
    return (fmt << 29) | (typ << 24) | (int(ep) << 14) | (length & 0x3FF)


def _rq(tag: int, first_be: int = 0xF, last_be: int = 0) -> int:
    return (FUZZ_RID << 16) | (tag << 8) | (last_be << 4) | first_be


def _mem(fmt_data: bool, addr: int, length: int, tag: int, fbe: int, lbe: int, *, typ: int = 0,
         ep: bool = False, data: list[int] | None = None, force64: bool = False) -> TlpFrame:
    four = force64 or addr >= 1 << 32
    fmt = (0b010 if fmt_data else 0b000) | int(four)
    dws = [_dw0(fmt, typ, length, ep), _rq(tag, fbe, lbe)]
    dws += [addr >> 32, addr & 0xFFFF_FFFC] if four else [addr & 0xFFFF_FFFC]
    return TlpFrame(_hdr(*dws), data=list(data or []))


def _cfg(write: bool, type1: bool, bdf: int, reg: int, tag: int, fbe: int = 0xF, value: int = 0) -> TlpFrame:
    typ = 0b00101 if type1 else 0b00100
    dws = [_dw0(0b010 if write else 0b000, typ, 1), _rq(tag, fbe), (bdf << 16) | (reg & 0xFFC)]
    return TlpFrame(_hdr(*dws), data=[value] if write else [])


def _legal_be(length: int, rng: random.Random) -> tuple[int, int]:
    if length == 1:
        return rng.choice([0x0, 0x1, 0x3, 0x6, 0xC, 0xF]), 0
    return rng.choice([0x1, 0x3, 0x7, 0xF, 0xE, 0xC, 0x8]), rng.choice([0x1, 0x3, 0x7, 0xF])


def make_requests(rng: random.Random, bar0: int, bar2: int, bar2_size: int, bdf: int) -> list[Req]:
    """One request per tag, of a randomly chosen class (each class says what the rules demand)."""
    reqs: list[Req] = []
    bus_dev = bdf & ~0x7
    for tag in range(N_FUZZ):
        kind = rng.choice([
            "mrd_bar0", "mrd_bar2", "mrd_outside", "mrd_bad_be", "mrd_cross_4k", "mrd_prefix_pasid",
            "mrd_prefix_other", "cfg_other_function", "cfg1", "io", "mrdlk", "atomic", "mwr_poisoned",
            "mwr_len_mismatch", "mwr_bad_be", "reserved_type", "msg_vendor", "cfgrd_bad_be",
        ])
        if kind in ("mrd_bar0", "mrd_bar2", "mrd_prefix_pasid", "mrd_prefix_other"):
            base, size = (bar0, 0x4000) if kind != "mrd_bar2" else (bar2, bar2_size)
            length = rng.choice([1, 1, 1, 2])
            addr = base + rng.randrange(0, size - 8, 4)
            fbe, lbe = _legal_be(length, rng)
            f = _mem(False, addr, length, tag, fbe, lbe, force64=rng.random() < 0.3)
            if kind == "mrd_prefix_pasid":
                f.prfx = PASID_PREFIX | rng.randrange(1, 1 << 20)
            elif kind == "mrd_prefix_other":  # ExtTPH or a vendor E2E prefix: not supported here
                f.prfx = rng.choice([0x9200_0000, 0x9E00_1234, 0x9F00_0000])
            # a register read completes (SC, or UR/CA for a hole); an unsupported prefix may be
            # treated as malformed (dropped) per PCIe 6.0 2.2.10.4
            reqs.append(Req(kind, f, tag, True, kind != "mrd_prefix_other"))
        elif kind == "mrd_outside":
            addr = rng.choice([0x10, 0xDEAD_0000, 0x7_0000_0000 + rng.randrange(0, 1 << 20, 4)])
            reqs.append(Req(kind, _mem(False, addr, 1, tag, 0xF, 0), tag, True, True, {CPL_UR}, TYPE_CPL))
        elif kind == "mrd_bad_be":  # length 1 with Last BE set, or Length > 1 with a zero First BE
            length = rng.choice([1, 2])
            fbe, lbe = (0xF, rng.randrange(1, 16)) if length == 1 else (0, 0xF)
            f = _mem(False, bar0 + SCRATCH, length, tag, fbe, lbe)
            reqs.append(Req(kind, f, tag, True, False))
        elif kind == "mrd_cross_4k":
            addr = bar0 + 0x1000 - 4 * rng.randrange(1, 4)
            f = _mem(False, addr, rng.randrange(4, 9), tag, 0xF, 0xF)
            reqs.append(Req(kind, f, tag, True, False))
        elif kind == "cfg_other_function":
            fn = rng.randrange(1, 8)
            write = rng.random() < 0.5
            f = _cfg(write, False, bus_dev | fn, rng.randrange(0, 0x100, 4), tag, value=rng.getrandbits(32))
            reqs.append(Req(kind, f, tag, True, True, {CPL_UR}, TYPE_CPL))
        elif kind == "cfgrd_bad_be":  # CfgRd with First BE 0: legal (reads nothing), must complete
            f = _cfg(False, False, bdf, rng.randrange(0, 0x100, 4), tag, fbe=0)
            reqs.append(Req(kind, f, tag, True, True))
        elif kind == "cfg1":
            f = _cfg(rng.random() < 0.5, True, bus_dev, 0, tag, value=0xFFFF_FFFF)
            reqs.append(Req(kind, f, tag, True, True, {CPL_UR}, TYPE_CPL))
        elif kind == "io":
            write = rng.random() < 0.5
            dws = [_dw0(0b010 if write else 0b000, 0b00010, 1), _rq(tag), 0x1000]
            reqs.append(Req(kind, TlpFrame(_hdr(*dws), data=[0x1234] if write else []), tag, True, True,
                            {CPL_UR}, TYPE_CPL))
        elif kind == "mrdlk":
            f = _mem(False, bar0 + SCRATCH, 1, tag, 0xF, 0, typ=0b00001)
            reqs.append(Req(kind, f, tag, True, True, {CPL_UR}, TYPE_CPLLK))
        elif kind == "atomic":  # FetchAdd / Swap (1 or 2 DW), CAS (2 or 4 DW): not supported -> UR
            typ = rng.choice([0b01100, 0b01101, 0b01110])
            n = rng.choice([1, 2]) * (2 if typ == 0b01110 else 1)
            f = _mem(True, bar0 + SCRATCH, n, tag, 0xF, 0xF if n > 1 else 0, typ=typ, data=[0] * n)
            reqs.append(Req(kind, f, tag, True, True, {CPL_UR}, TYPE_CPL))
        elif kind == "mwr_poisoned":
            f = _mem(True, bar0 + SCRATCH, 1, tag, 0xF, 0, ep=True, data=[rng.getrandbits(32)])
            reqs.append(Req(kind, f, tag, False, True))
        elif kind == "mwr_len_mismatch":
            n = rng.randrange(1, 4)
            f = _mem(True, bar0 + SCRATCH, n, tag, 0xF, 0xF if n > 1 else 0,
                     data=[rng.getrandbits(32) for _ in range(n + rng.choice([-1, 1]) if n > 1 else 2)])
            reqs.append(Req(kind, f, tag, False, False))
        elif kind == "mwr_bad_be":  # Length 1 with Last BE set: checking it is optional (PCIe 2.2.5),
            # so the write may land; it carries the value the scratch register already holds
            f = _mem(True, bar0 + SCRATCH, 1, tag, 0xF, rng.randrange(1, 16), data=[SCRATCH_VALUE])
            reqs.append(Req(kind, f, tag, False, False))
        elif kind == "reserved_type":
            fmt, typ = rng.choice([(0b000, 0b00011), (0b000, 0b01100), (0b001, 0b10110), (0b010, 0b00110),
                                   (0b000, 0b11011), (0b011, 0b00011)])
            n = 1 if fmt & 0b010 else 0
            dws = [_dw0(fmt, typ, 1), _rq(tag), 0, bar0 + SCRATCH]
            # malformed: dropped; a receiver that answers it as an unknown non-posted request may
            # send one UR completion (never more)
            reqs.append(Req(kind, TlpFrame(_hdr(*dws), data=[0] * n), tag, True, False))
        elif kind == "msg_vendor":  # Vendor_Defined Type 0 / Type 1, routed to the receiver (100b)
            code = rng.choice([0x7E, 0x7F])
            dws = [_dw0(0b001, 0b10100, 0), (FUZZ_RID << 16) | (tag << 8) | code, bdf << 16, 0]
            reqs.append(Req(kind, TlpFrame(_hdr(*dws)), tag, False, True))
    return reqs


# RW1C status bits the fuzz may set (byte offset -> mask per byte), everything else must not change
def _volatile_mask(cs: ConfigSpace) -> dict[int, int]:
    mask: dict[int, int] = {0x06: 0x00, 0x07: 0xF9}  # Status[15:11], [8]: error bits
    pcie = cs.pcie()
    if pcie is not None:
        mask[pcie.offset + 0x0A] = 0x0F  # DevSta CED/NFED/FED/URD
        mask[pcie.offset + 0x0B] = 0x00
        mask[pcie.offset + 0x0A] = 0x2F  # and Transactions Pending
    off = 0x100
    seen = set()
    while 0x100 <= off < 0x1000 and off not in seen:
        seen.add(off)
        hdr = int.from_bytes(cs.raw[off : off + 4], "little")
        if hdr == 0:
            break
        if hdr & 0xFFFF == 0x0001:  # AER: status, first error pointer, header and prefix logs
            for b in [*range(0x04, 0x08), *range(0x10, 0x14), 0x18, *range(0x1C, 0x2C), *range(0x38, 0x48)]:
                mask[off + b] = 0xFF if b != 0x18 else 0x1F
            mask[off + 0x30] = 0xFF  # Root Error Status (n/a for an endpoint; reads 0)
        off = hdr >> 20
    return mask


def _config_diffs(before: bytes, after: bytes, mask: dict[int, int]) -> list[str]:
    out = []
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        if (a ^ b) & ~mask.get(i, 0) & 0xFF:
            out.append(f"config 0x{i:03x}: 0x{a:02x} -> 0x{b:02x}")
    return out


@cocotb.test()
async def fuzz_with_legal_traffic(dut: object) -> None:
    from siov_sim.sw.driver import PfDriver
    from siov_sim.sw.driver.regs_adi import RegAdiControl
    from siov_sim.sw.guest.demo import run_bandwidth
    from siov_sim.sw.iommu import IommuDriver
    from siov_sim.tb.pcie.host_bus import as_host_bus
    from siov_sim.tb.pcie.iommu_rc import LOW_RAM_END, IommuRootComplex

    seed = int(os.environ.get("SIOV_FUZZ_SEED", "1"))
    rng = random.Random(seed)
    dut._log.warning("link fuzz seed %d (SIOV_FUZZ_SEED=%d reruns it), %d requests", seed, seed, N_FUZZ)
    rc = IommuRootComplex(FlatHostMemory(0, LOW_RAM_END))
    env = Env(dut, rc=rc)
    dev = await env.start()
    assert dev is not None
    bus = as_host_bus(rc)
    iommu = IommuDriver(bus)
    pf = PfDriver(bus, int(dev.pcie_id), iommu, RegAdiControl.create)
    await pf.probe()
    bar0, bar2 = dev.bar_addr[0], dev.bar_addr[2]
    await dev.bar_window[0].write_dword(SCRATCH, SCRATCH_VALUE)
    before = await read_config_space(dev)
    mask = _volatile_mask(ConfigSpace(before))

    got: dict[int, list[TlpFrame]] = {}

    def tap(f: TlpFrame, stream: str) -> bool:
        if stream == "tx_cpl_tlp" and (f.hdr >> 48) & 0xFFFF == FUZZ_RID:
            got.setdefault((f.hdr >> 40) & 0xFF, []).append(f)
            return True
        return False

    env.ep.tap = tap
    reqs = make_requests(rng, bar0, bar2, dev.bar_size[2], int(dev.pcie_id))

    async def fuzz() -> None:
        for r in reqs:
            env.ep.inject_request(r.frame)
            await ClockCycles(env.dut.clk, rng.randrange(1, 40))

    traffic = cocotb.start_soon(run_bandwidth(bus, pf, iommu, vdevs=2, size=8192, batch=4, rounds=2, seed=seed))
    fz = cocotb.start_soon(fuzz())
    await Combine(traffic, fz)
    rep = traffic.result()
    await Timer(20, "us")  # late completions are counted too
    env.ep.tap = None

    errors: list[str] = []
    if rep.errors or rep.mismatches:
        errors.append(f"legal traffic failed next to the fuzz: errors={rep.errors} mismatches={rep.mismatches}")
    counts: dict[str, int] = {}
    for r in reqs:
        counts[r.kind] = counts.get(r.kind, 0) + 1
        cpls = got.pop(r.tag, [])
        where = f"tag {r.tag} {r.kind} hdr=0x{r.frame.hdr:032x} prfx=0x{r.frame.prfx:08x}"
        if not r.nonposted:
            if cpls:
                errors.append(f"{where}: posted request got {len(cpls)} completion(s)")
            continue
        if len(cpls) > 1 or (r.wellformed and len(cpls) != 1):
            errors.append(f"{where}: {len(cpls)} completions (expected {'1' if r.wellformed else '0 or 1'})")
            continue
        for c in cpls:
            status, ctype = (c.hdr >> 77) & 0x7, (c.hdr >> 120) & 0x1F
            if r.status is not None and status not in r.status:
                errors.append(f"{where}: completion status {status}, expected one of {sorted(r.status)}")
            if r.cpl_type is not None and ctype != r.cpl_type:
                errors.append(f"{where}: completion Type 0b{ctype:05b}, expected 0b{r.cpl_type:05b}")
    for tag, cpls in got.items():
        errors.append(f"{len(cpls)} completion(s) for tag {tag} that no fuzz request used")
    # PASID Enable cleared (no VDEV is left running): a PASID-prefixed read is UR, a prefixed write
    # is dropped; prefix-less reads still complete; then PASID Enable comes back
    pcap = ConfigSpace(before).pasid()
    assert pcap is not None
    pasid_cap = pcap.offset
    ctl = await dev.config_read_word(pasid_cap + 6)
    await dev.config_write_word(pasid_cap + 6, ctl & ~1)
    got.clear()
    env.ep.tap = tap
    off = []
    for i in range(16):
        tag = N_FUZZ + i if N_FUZZ + i < 256 else i
        write = i % 4 == 3
        f = _mem(write, bar0 + SCRATCH, 1, tag, 0xF, 0, data=[rng.getrandbits(32)] if write else None)
        f.prfx = PASID_PREFIX | rng.randrange(1, 1 << 20) if i % 2 == 0 or write else 0
        off.append((tag, f, write))
        env.ep.inject_request(f)
        await ClockCycles(env.dut.clk, rng.randrange(1, 20))
    await Timer(5, "us")
    env.ep.tap = None
    for tag, f, write in off:
        cpls = got.pop(tag, [])
        where = f"PASID disabled: tag {tag} {'MWr' if write else 'MRd'} prfx=0x{f.prfx:08x}"
        if write:
            if cpls:
                errors.append(f"{where}: posted write got a completion")
        elif len(cpls) != 1:
            errors.append(f"{where}: {len(cpls)} completions")
        elif f.prfx and (cpls[0].hdr >> 77) & 7 != CPL_UR:
            errors.append(f"{where}: status {(cpls[0].hdr >> 77) & 7}, PCIe wants UR")
        elif not f.prfx and (cpls[0].hdr >> 77) & 7 != CPL_SC:
            errors.append(f"{where}: a read without prefix failed ({(cpls[0].hdr >> 77) & 7})")
    await dev.config_write_word(pasid_cap + 6, ctl)
    # the endpoint still answers, and nothing outside the rules changed
    assert await dev.config_read_dword(0x00) == 0x5105_1DEA
    scratch = await dev.bar_window[0].read_dword(SCRATCH)
    if scratch != SCRATCH_VALUE:
        errors.append(f"scratch register 0x{scratch:08x}: a poisoned or malformed write reached it")
    after = await read_config_space(dev)
    errors += _config_diffs(before, after, mask)
    ep_errors = list(env.ep.protocol_errors)
    errors += [f"link: {e}" for e in ep_errors]
    dut._log.warning("fuzzed %s", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    assert not errors, f"seed {seed}: {len(errors)} violation(s):\n" + "\n".join(errors[:40])


@pytest.mark.system
@pytest.mark.parametrize("seed", [1, 2])
def test_link_fuzz(seed: int) -> None:
    run_rtl(
        "ep_top",
        test_module=__name__,
        parameters={"NumAdi": NUM_ADI},
        extra_env={"SIOV_FUZZ_SEED": str(seed), "COCOTB_RANDOM_SEED": str(seed)},
    )
