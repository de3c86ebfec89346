"""A TLP-level host for ep_core's DMA streams (rtl/README.md): answers MRd with CplD (split at
RCB boundaries in random order, optional latency), applies MWr to per-PASID memory, records
interrupt messages (writes to 0xFEEx_xxxx). Runs in one coroutine per clock."""

from __future__ import annotations

import itertools
import random
from bisect import insort
from collections import deque
from typing import Any

from cocotb.triggers import RisingEdge

from tests.rtl.adi_harness import Spaces

Dut = Any
MSI_BASE = 0xFEE0_0000


class TlpHost:
    def __init__(
        self,
        dut: Dut,
        spaces: Spaces,
        rng: random.Random,
        *,
        latency: int = 40,
        split: bool = False,
        backpressure: bool = False,
        ur_pages: set[tuple[int | None, int]] | None = None,
    ) -> None:
        self.dut = dut
        self.spaces = spaces
        self.rng = rng
        self.latency = latency
        self.split = split
        self.backpressure = backpressure
        self.ur_pages = ur_pages if ur_pages is not None else set()
        self.S = len(dut.tx_wr_req_tlp_strb)
        self.B = 4 * self.S
        self.msgs: list[tuple[int, int]] = []
        self.wr_bytes = 0
        self.rd_bytes = 0
        self.first_wr: int | None = None
        self.last_wr = 0
        self.cycle = 0
        self.prefixes: set[int] = set()
        dut.tx_wr_req_tlp_ready.value = 1
        dut.tx_rd_req_tlp_ready.value = 1
        dut.rx_cpl_tlp_valid.value = 0

    @staticmethod
    def _pasid(prfx: int) -> int | None:
        return prfx & 0xFFFFF if prfx >> 24 == 0x91 else None

    def _completions(self, hdr: int, prfx: int) -> list[list[tuple[int, int, int, bool, bool]]]:
        fmt = hdr >> 125
        ndw = (hdr >> 96) & 0x3FF or 1024
        tag = (hdr >> 72) & 0xFF
        rid = (hdr >> 80) & 0xFFFF
        lbe, fbe = (hdr >> 68) & 0xF, (hdr >> 64) & 0xF
        addr = (((hdr >> 32) & 0xFFFF_FFFF) << 32 | (hdr & 0xFFFF_FFFC)) if fmt & 1 else (hdr >> 32) & 0xFFFF_FFFC
        first_skip = (fbe & -fbe).bit_length() - 1
        last_skip = 0 if ndw == 1 else 3 - (lbe.bit_length() - 1)
        if ndw == 1:
            last_skip = 3 - (fbe.bit_length() - 1)
        nbytes = 4 * ndw - first_skip - last_skip
        start = addr + first_skip
        pasid = self._pasid(prfx)
        self.prefixes.add(prfx)

        def cpl_hdr(status: int, length_dw: int, byte_count: int, lower: int) -> int:
            fmt_t = (0b010 if length_dw else 0b000) << 29 | 0b01010 << 24 | (length_dw & 0x3FF)
            dw1 = 0x0100 << 16 | status << 13 | (byte_count & 0xFFF)
            dw2 = rid << 16 | tag << 8 | (lower & 0x7F)
            return fmt_t << 96 | dw1 << 64 | dw2 << 32

        if (pasid, start >> 12) in self.ur_pages:
            return [[(cpl_hdr(1, 0, nbytes, start), 0, 0, True, True)]]
        data = self.spaces.mem(pasid).read(addr, 4 * ndw)
        self.rd_bytes += nbytes
        # split at 64-byte (RCB) boundaries
        cuts = [addr]
        if self.split:
            b = (addr & ~63) + 64
            while b < addr + 4 * ndw:
                if self.rng.random() < 0.5:
                    cuts.append(b)
                b += 64
        cuts.append(addr + 4 * ndw)
        tlps = []
        remaining = nbytes
        for lo, hi in itertools.pairwise(cuts):
            chunk = data[lo - addr : hi - addr]
            lower = start if lo == addr else lo
            beats = []
            dws = len(chunk) // 4
            for i in range(0, len(chunk), self.B):
                piece = chunk[i : i + self.B]
                n = len(piece) // 4
                beats.append(
                    (
                        cpl_hdr(0, dws, remaining, lower),
                        int.from_bytes(piece, "little"),
                        (1 << n) - 1,
                        i == 0,
                        i + self.B >= len(chunk),
                    )
                )
            remaining -= (hi - lo) - (first_skip if lo == addr else 0) - (last_skip if hi == addr + 4 * ndw else 0)
            tlps.append(beats)
        return tlps  # in address order (PCIe: completions of one request are never reordered)

    async def run(self) -> None:  # one loop per clock
        d = self.dut
        rng = self.rng
        pending: list[tuple[int, int, list[tuple[int, int, int, bool, bool]]]] = []
        seq = itertools.count()
        out: deque[tuple[int, int, int, bool, bool]] = deque()
        driving = False
        wr_hdr = 0
        wr_prfx = 0
        wr_data = bytearray()
        while True:
            await RisingEdge(d.clk)
            self.cycle += 1
            c = self.cycle
            if d.tx_rd_req_tlp_valid.value and d.tx_rd_req_tlp_ready.value:
                # with `split`, a random extra latency per request reorders completions
                # between requests (never within one)
                due = c + self.latency + (rng.randrange(64) if self.split else 0)
                tlps = self._completions(
                    d.tx_rd_req_tlp_hdr.value.to_unsigned(), d.tx_rd_req_tlp_prfx.value.to_unsigned()
                )
                insort(pending, (due, next(seq), [b for t in tlps for b in t]), key=lambda x: (x[0], x[1]))
            if driving and d.rx_cpl_tlp_ready.value:
                out.popleft()
            while not out and pending and pending[0][0] <= c:
                out.extend(pending.pop(0)[2])
            if out:
                h, data, strb, sop, eop = out[0]
                d.rx_cpl_tlp_hdr.value = h
                d.rx_cpl_tlp_data.value = data
                d.rx_cpl_tlp_strb.value = strb
                d.rx_cpl_tlp_sop.value = sop
                d.rx_cpl_tlp_eop.value = eop
                d.rx_cpl_tlp_valid.value = 1
                driving = True
            elif driving:
                d.rx_cpl_tlp_valid.value = 0
                driving = False
            if d.tx_wr_req_tlp_valid.value and d.tx_wr_req_tlp_ready.value:
                if d.tx_wr_req_tlp_sop.value:
                    wr_hdr = d.tx_wr_req_tlp_hdr.value.to_unsigned()
                    wr_prfx = d.tx_wr_req_tlp_prfx.value.to_unsigned()
                    wr_data = bytearray()
                strb = d.tx_wr_req_tlp_strb.value.to_unsigned()
                n = strb.bit_length()
                wr_data += d.tx_wr_req_tlp_data.value.to_unsigned().to_bytes(self.B, "little")[: 4 * n]
                if d.tx_wr_req_tlp_eop.value:
                    self._write(wr_hdr, wr_prfx, bytes(wr_data))
            if self.backpressure:
                d.tx_wr_req_tlp_ready.value = rng.random() < 0.8
                d.tx_rd_req_tlp_ready.value = rng.random() < 0.8

    def _write(self, hdr: int, prfx: int, data: bytes) -> None:
        fmt = hdr >> 125
        ndw = (hdr >> 96) & 0x3FF or 1024
        lbe, fbe = (hdr >> 68) & 0xF, (hdr >> 64) & 0xF
        addr = (((hdr >> 32) & 0xFFFF_FFFF) << 32 | (hdr & 0xFFFF_FFFC)) if fmt & 1 else (hdr >> 32) & 0xFFFF_FFFC
        assert len(data) == 4 * ndw, (len(data), ndw)
        if addr & ~0xFFFFF == MSI_BASE and prfx == 0:
            self.msgs.append((addr, int.from_bytes(data[:4], "little")))
            return
        pasid = self._pasid(prfx)
        self.prefixes.add(prfx)
        # byte enables are contiguous (first BE: leading zeros, last BE: trailing zeros)
        first_skip = (fbe & -fbe).bit_length() - 1
        last_be = fbe if ndw == 1 else lbe
        last_skip = 3 - (last_be.bit_length() - 1)
        payload = data[first_skip : 4 * ndw - last_skip]
        self.spaces.mem(pasid).write(addr + first_skip, payload)
        if self.first_wr is None:
            self.first_wr = self.cycle
        self.last_wr = self.cycle
        self.wr_bytes += len(payload)
