// SPDX-License-Identifier: Apache-2.0
// Fast link host port: the root-complex side of ep_top's five TLP streams, in C++.
//
// Compiled into the Verilator model of tb/fast/ep_fast_top.sv (DPI-C) and driven once per clock
// from there; Python (tb/fast/hostport.py) reaches the same state through ctypes, because the
// cocotb simulation process has the model and the interpreter in one address space.
//
// What it does per TLP the RTL sends upstream (see tb/fast/README.md for the contract):
//  * MWr/MRd that are plain (no TH/TD/EP/AT bits, no 4 KiB crossing, length matches data) and
//    not a PASID-less write to the interrupt window are translated through the IOTLB mirror:
//    an exact copy of the Python IOMMU model's IOTLB, kept by the model's IotlbObserver. A miss
//    (or any request the model's own hit path would not serve: ER, a write through an entry
//    filled by a read) calls the Python resolver synchronously, which runs the model's
//    translate() (walk, A/D update, fault recording) and so refills the mirror.
//  * translated to host RAM: writes are applied to the shared host-memory buffer with their byte
//    enables, reads are answered with completions split exactly like cocotbext-pcie's root
//    complex does (MPS, RCB), delivered on rx_cpl after a fixed latency;
//  * a faulting read gets a completion without data (status from the resolver); a faulting
//    write is dropped (the fault is recorded by the model);
//  * everything else (interrupt messages, completions for host reads, malformed or unusual
//    TLPs, targets outside RAM) is queued whole for Python ("slow lane"), which puts it on the
//    cocotbext-pcie link exactly as the accurate mode does. Python is told by a toggle of
//    py_notify in the wrapper, so it wakes once per batch, never per beat.
//
// Nothing here knows the simulator: the same file links into the no-Python replay harness.

#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <vector>

#include "svdpi.h"

namespace {

enum Stream : int { RX_REQ = 0, RX_CPL = 1, TX_CPL = 2, TX_WR = 3, TX_RD = 4, NUM_STREAMS = 5 };

// resolver return codes (low byte) and flags
enum : int { RES_OK = 0, RES_FAULT = 1, RES_SLOW = 2, RES_NOTIFY = 0x100 };
enum : uint32_t { REQ_WRITE = 1, REQ_PMR = 2, REQ_ER = 4 };

using Resolver = int (*)(uint32_t sid, int32_t pasid, uint32_t flags, uint64_t addr, uint64_t* out);

struct Frame {
    uint32_t hdr[4] = {0, 0, 0, 0};  // DW0..DW3 (DW0 = hdr[127:96] on the wire)
    uint32_t prfx = 0;
    std::vector<uint32_t> data;
    uint64_t due = 0;  // rx streams: first cycle the frame may be presented
};

struct TlbKey {
    uint32_t sid;
    int32_t pasid;
    uint32_t pmr;
    uint64_t pfn;
    bool operator==(const TlbKey& o) const {
        return sid == o.sid && pasid == o.pasid && pmr == o.pmr && pfn == o.pfn;
    }
};
struct TlbKeyHash {
    size_t operator()(const TlbKey& k) const {
        uint64_t h = k.pfn * 0x9E3779B97F4A7C15ull;
        h ^= (uint64_t(k.sid) << 32 | uint32_t(k.pasid)) + 0x7F4A7C15ull + (h << 6) + (h >> 2);
        return size_t(h ^ k.pmr);
    }
};
struct TlbVal {
    uint64_t out_base;
    uint64_t off_mask;
    bool write_ok;
    bool read_ok;  // false for an entry a write filled through a table with a read bit (SS, nested)
};

struct Window {
    uint64_t lo, hi;
};

// counters readable from Python (hp_stats): keep in sync with tb/fast/hostport.py STAT_NAMES
enum Stat : int {
    ST_WR_FAST, ST_RD_FAST, ST_WR_BYTES, ST_RD_BYTES, ST_CPL_FAST, ST_TLB_HIT, ST_RESOLVE,
    ST_WR_FAULT, ST_RD_FAULT, ST_SLOW, ST_TO_PY, ST_FROM_PY, ST_TICKS,
    ST_FRAMES0, ST_BEATS0 = ST_FRAMES0 + NUM_STREAMS, ST_PAYLOAD0 = ST_BEATS0 + NUM_STREAMS,
    ST_STALL0 = ST_PAYLOAD0 + NUM_STREAMS, ST_FIRST0 = ST_STALL0 + NUM_STREAMS,
    ST_LAST0 = ST_FIRST0 + NUM_STREAMS, ST_COUNT = ST_LAST0 + NUM_STREAMS
};

struct SourceState {  // a stream the host drives into the RTL
    std::deque<Frame> q;
    size_t beat = 0;  // next beat of q.front()
    bool valid = false;
};

struct SinkState {  // a stream the RTL drives into the host
    Frame cur;
    bool in_frame = false;
};

struct HostPort {
    int lanes = 8;  // DWs per beat (DataWidth / 32)
    uint8_t* mem = nullptr;
    uint64_t mem_base = 0, mem_size = 0;
    std::vector<Window> ram;
    Resolver resolver = nullptr;
    int max_payload_dw = 128;  // root complex MPS (cocotbext-pcie: 32 << max_payload_size)
    int rcb = 64;
    bool split_on_all_rcb = false;
    uint32_t read_latency = 64;  // cycles from MRd accept to its first completion beat
    std::unordered_map<TlbKey, TlbVal, TlbKeyHash> tlb;
    SourceState src[2];
    SinkState sink[NUM_STREAMS];
    std::deque<std::pair<int, Frame>> to_py;
    uint32_t notify = 0;
    uint64_t cycle = 0;
    uint64_t stats[ST_COUNT] = {};
    uint32_t tx_ready_mask = 0x7;  // tx_cpl, tx_wr, tx_rd
    // recording (hp_record_start/stop) and replay (the no-Python harness, replay_main.cpp)
    uint32_t cov_seen = 0;  // which functional-coverage bins the C++ path has hit (COV_* bits)
    bool recording = false, replay = false;
    std::vector<uint32_t> rec;
    uint64_t tx_hash = 0xCBF29CE484222325ull, tx_frames = 0;
    int last_rst = -1;
    // PCIe ordering check (as tb/pcie/ep_device.py does): the cycle each tx stream's open frame
    // was first offered (-1: none), completions/reads taken this cycle with their offer cycle,
    // and how many passed a posted write offered before them
    int64_t open_since[NUM_STREAMS] = {-1, -1, -1, -1, -1};
    std::vector<int64_t> taken_np;
    uint64_t order_errors = 0;
};

HostPort hp;

inline void notify_python() { hp.notify ^= 1; }

// functional coverage of the TLPs served here: Python samples tb/coverage.py's bins once per bit,
// when it first appears (hp_cov_seen), instead of once per TLP
enum : uint32_t {
    COV_UP_WR_PASID = 1, COV_UP_WR = 2, COV_UP_RD_PASID = 4, COV_UP_RD = 8, COV_DN_CPLD_SC = 16,
    COV_DN_CPL_UR = 32, COV_DN_CPL_CA = 64, COV_DN_CPL_OTHER = 128
};

inline void cov(uint32_t bit) {
    if (!(hp.cov_seen & bit)) {
        hp.cov_seen |= bit;
        notify_python();
    }
}

// ---- recording: every input the RTL gets, so replay_main.cpp can feed the same model the same
// stimulus cycle by cycle with no Python (and prove it by the hash of everything it sent back)
enum : uint32_t { REC_MAGIC = 0x53494F56u, REC_RST = 1, REC_FRAME = 2, REC_MARK = 3, REC_END = 4 };

inline void rec_u64(uint64_t v) {
    hp.rec.push_back(uint32_t(v));
    hp.rec.push_back(uint32_t(v >> 32));
}

void rec_frame(int stream, const Frame& f) {
    if (!hp.recording) return;
    hp.rec.push_back(REC_FRAME);
    hp.rec.push_back(uint32_t(stream));
    rec_u64(f.due);
    hp.rec.push_back(f.prfx);
    hp.rec.push_back(uint32_t(f.data.size()));
    hp.rec.insert(hp.rec.end(), f.hdr, f.hdr + 4);
    hp.rec.insert(hp.rec.end(), f.data.begin(), f.data.end());
}

inline void hash_u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        hp.tx_hash ^= (v >> (8 * i)) & 0xFF;
        hp.tx_hash *= 0x100000001B3ull;
    }
}

void hash_tx(int stream, const Frame& f) {  // FNV-1a over every frame the RTL sends up
    hash_u32(uint32_t(stream));
    for (uint32_t w : f.hdr) hash_u32(w);
    hash_u32(f.prfx);
    hash_u32(uint32_t(f.data.size()));
    for (uint32_t w : f.data) hash_u32(w);
    hp.tx_frames++;
}

// kind codes of frames handed to Python besides plain TLPs (hp_pop word 0, bits 15:8)
enum : int { PY_TLP = 0, PY_NO_EOP = 1, PY_NO_SOP = 2 };

void to_python(int stream, Frame&& f, int kind = PY_TLP) {
    hp.to_py.emplace_back(stream | kind << 8, std::move(f));
    hp.stats[ST_TO_PY]++;
    notify_python();
}

inline uint8_t* ram_ptr(uint64_t hpa, uint64_t len) {
    for (const Window& w : hp.ram) {
        if (hpa >= w.lo && hpa + len <= w.hi) return hp.mem + (hpa - hp.mem_base);
    }
    return nullptr;
}

struct Req {  // the fields of a memory request the fast path needs
    bool write, is64;
    uint32_t length;  // DWs (1..1024)
    uint32_t first_be, last_be, tag, rid, tc, attr;
    uint64_t addr;
    int32_t pasid;  // -1 = no PASID prefix
    bool pmr, er;
};

// A plain MRd/MWr the fast path may serve; false = give it to Python as it is.
bool parse_req(const Frame& f, bool write, Req& r) {
    uint32_t dw0 = f.hdr[0];
    uint32_t fmt = dw0 >> 29, type = (dw0 >> 24) & 0x1F;
    if (type != 0) return false;
    if (write ? (fmt != 2 && fmt != 3) : (fmt != 0 && fmt != 1)) return false;
    if (dw0 & ((1u << 17) | (1u << 16) | (1u << 15) | (1u << 14) | (3u << 10))) return false;  // LN TH TD EP AT
    r.write = write;
    r.is64 = fmt & 1;
    r.length = dw0 & 0x3FF;
    if (r.length == 0) r.length = 1024;
    r.tc = (dw0 >> 20) & 7;
    r.attr = ((dw0 >> 12) & 3) | (((dw0 >> 18) & 1) << 2);
    uint32_t dw1 = f.hdr[1];
    r.first_be = dw1 & 0xF;
    r.last_be = (dw1 >> 4) & 0xF;
    r.tag = ((dw1 >> 8) & 0xFF) | (((dw0 >> 19) & 1) << 8) | (((dw0 >> 23) & 1) << 9);
    r.rid = dw1 >> 16;
    if (r.is64) {
        if (f.hdr[3] & 3) return false;  // PH
        r.addr = (uint64_t(f.hdr[2]) << 32) | f.hdr[3];
    } else {
        if (f.hdr[2] & 3) return false;
        r.addr = f.hdr[2];
    }
    if (uint64_t(r.length) * 4 > 0x1000 - (r.addr & 0xFFF)) return false;  // 4 KiB crossing
    if (write && f.data.size() != r.length) return false;
    if (!write && !f.data.empty()) return false;
    r.pasid = -1;
    r.pmr = r.er = false;
    if (f.prfx) {
        if ((f.prfx >> 24) != 0x91) return false;  // only the PASID prefix
        r.pasid = int32_t(f.prfx & 0xFFFFF);
        r.pmr = (f.prfx >> 23) & 1;
        r.er = (f.prfx >> 22) & 1;
    }
    // a PASID-less write to 0xFEEx_xxxx is an interrupt (the root complex's job); so is a
    // PASID-less read there (blocked with a fault record): both take the slow lane
    if (r.pasid < 0 && r.addr >= 0xFEE00000ull && r.addr < 0xFEF00000ull) return false;
    return true;
}

// translate through the mirror or the resolver: RES_OK (hpa), RES_FAULT (status), RES_SLOW
int translate(const Req& r, uint64_t& out) {
    if (!r.er) {
        auto it = hp.tlb.find(TlbKey{r.rid, r.pasid, r.pmr ? 1u : 0u, r.addr >> 12});
        if (it != hp.tlb.end() && (r.write ? it->second.write_ok : it->second.read_ok)) {
            out = it->second.out_base | (r.addr & it->second.off_mask);
            hp.stats[ST_TLB_HIT]++;
            return RES_OK;
        }
    }
    if (!hp.resolver) return RES_SLOW;
    hp.stats[ST_RESOLVE]++;
    uint32_t flags = (r.write ? REQ_WRITE : 0) | (r.pmr ? REQ_PMR : 0) | (r.er ? REQ_ER : 0);
    int rc = hp.resolver(r.rid, r.pasid, flags, r.addr, &out);
    if (rc & RES_NOTIFY) notify_python();
    return rc & 0xFF;
}

uint32_t first_be_offset(uint32_t be) {
    if ((be & 7) == 0) return 3;
    if ((be & 3) == 0) return 2;
    if ((be & 1) == 0) return 1;
    return 0;
}

uint32_t last_be_offset(const Req& r) {
    uint32_t be = r.length == 1 ? r.first_be : r.last_be;
    if ((be & 0xF) == 0x1) return 3;
    if ((be & 0xE) == 0x2) return 2;
    if ((be & 0xC) == 0x4) return 1;
    return 0;
}

void write_dw_be(uint8_t* dst, uint32_t dw, uint32_t be) {
    for (int k = 0; k < 4; ++k)
        if (be & (1u << k)) dst[k] = uint8_t(dw >> (8 * k));
}

void handle_write(Frame&& f) {
    Req r;
    if (!parse_req(f, true, r)) {
        hp.stats[ST_SLOW]++;
        to_python(TX_WR, std::move(f));
        return;
    }
    uint64_t hpa = 0;
    int res = translate(r, hpa);
    if (res == RES_FAULT) {
        cov(r.pasid >= 0 ? COV_UP_WR_PASID : COV_UP_WR);
        hp.stats[ST_WR_FAULT]++;  // posted: dropped; the model recorded the fault
        return;
    }
    uint8_t* p = res == RES_OK ? ram_ptr(hpa, uint64_t(r.length) * 4) : nullptr;
    if (!p) {
        hp.stats[ST_SLOW]++;
        to_python(TX_WR, std::move(f));
        return;
    }
    const uint32_t* d = f.data.data();
    uint32_t n = r.length;
    uint32_t lbe = n == 1 ? 0 : r.last_be;
    if (r.first_be == 0xF && (n == 1 || lbe == 0xF)) {
        std::memcpy(p, d, size_t(n) * 4);  // little-endian host: DW i = bytes 4i..4i+3
    } else {
        write_dw_be(p, d[0], r.first_be);
        if (n > 2) std::memcpy(p + 4, d + 1, size_t(n - 2) * 4);
        if (n > 1) write_dw_be(p + 4 * (n - 1), d[n - 1], lbe);
    }
    cov(r.pasid >= 0 ? COV_UP_WR_PASID : COV_UP_WR);
    hp.stats[ST_WR_FAST]++;
    hp.stats[ST_WR_BYTES] += uint64_t(n) * 4;
}

uint32_t cpl_dw0(bool data, uint32_t len, const Req& r) {
    uint32_t dw = (data ? 2u : 0u) << 29 | 0x0Au << 24;
    dw |= (r.tc & 7) << 20 | (r.attr & 3) << 12 | (r.attr & 4) << 16;
    dw |= (r.tag & 0x100) << 11 | (r.tag & 0x200) << 14;
    dw |= len & 0x3FF;
    return dw;
}

void push_rx_cpl(Frame&& f) {
    rec_frame(RX_CPL, f);
    hp.src[RX_CPL].q.push_back(std::move(f));
}

void handle_read(Frame&& f) {
    Req r;
    if (!parse_req(f, false, r)) {
        hp.stats[ST_SLOW]++;
        to_python(TX_RD, std::move(f));
        return;
    }
    uint64_t hpa = 0;
    int res = translate(r, hpa);
    uint64_t due = hp.cycle + hp.read_latency;
    if (res == RES_FAULT) {
        uint32_t status = uint32_t(hpa) & 7;
        cov(r.pasid >= 0 ? COV_UP_RD_PASID : COV_UP_RD);
        cov(status == 1 ? COV_DN_CPL_UR : status == 4 ? COV_DN_CPL_CA : COV_DN_CPL_OTHER);
        hp.stats[ST_RD_FAULT]++;
        Frame c;  // completion without data, byte count 0, as the root complex sends it
        c.hdr[0] = cpl_dw0(false, 0, r);
        c.hdr[1] = (uint32_t(hpa) & 7) << 13;
        c.hdr[2] = r.rid << 16 | (r.tag & 0xFF) << 8;
        c.due = due;
        push_rx_cpl(std::move(c));
        return;
    }
    const uint8_t* p = res == RES_OK ? ram_ptr(hpa, uint64_t(r.length) * 4) : nullptr;
    if (!p) {
        hp.stats[ST_SLOW]++;
        to_python(TX_RD, std::move(f));
        return;
    }
    // split like cocotbext-pcie RootComplex.handle_mem_read_tlp
    uint32_t first_off = first_be_offset(r.first_be);
    uint64_t addr = hpa + first_off;
    uint32_t dw_length = r.length;
    uint32_t byte_length = r.length * 4 - first_off - last_be_offset(r);
    uint32_t rcb_mask = (uint32_t(hp.rcb) - 1) & 0xFC;
    uint32_t m = 0, n = 0;
    while (m < dw_length) {
        uint32_t len = dw_length - m;
        if (hp.split_on_all_rcb) {
            uint32_t lim = (uint32_t(hp.rcb) - (uint32_t(addr) & rcb_mask)) >> 2;
            if (len > lim) len = lim;
        } else if (len > uint32_t(hp.max_payload_dw)) {
            len = uint32_t(hp.max_payload_dw) - ((uint32_t(addr) & rcb_mask) >> 2);
        }
        Frame c;
        c.hdr[0] = cpl_dw0(true, len, r);
        c.hdr[1] = (byte_length - n) & 0xFFF;  // completer 0:0.0, status SC, BCM 0
        c.hdr[2] = r.rid << 16 | (r.tag & 0xFF) << 8 | (uint32_t(addr) & 0x7F);
        c.data.resize(len);
        std::memcpy(c.data.data(), p + size_t(m) * 4, size_t(len) * 4);
        c.due = due;
        push_rx_cpl(std::move(c));
        hp.stats[ST_CPL_FAST]++;
        m += len;
        n += len * 4 - (uint32_t(addr) & 3);
        addr += len * 4 - (addr & 3);
    }
    cov(r.pasid >= 0 ? COV_UP_RD_PASID : COV_UP_RD);
    cov(COV_DN_CPLD_SC);
    hp.stats[ST_RD_FAST]++;
    hp.stats[ST_RD_BYTES] += uint64_t(r.length) * 4;
}

void dispatch(int stream, Frame&& f) {
    if (hp.recording || hp.replay) hash_tx(stream, f);
    if (hp.replay) return;  // the recorded completions already stand in for what this would cause
    if (stream == TX_WR) handle_write(std::move(f));
    else if (stream == TX_RD) handle_read(std::move(f));
    else to_python(stream, std::move(f));  // TX_CPL: completions for the host's own reads
}

inline void count_beat(int s, uint32_t payload_dws) {
    if (!hp.stats[ST_BEATS0 + s]) hp.stats[ST_FIRST0 + s] = hp.cycle;
    hp.stats[ST_LAST0 + s] = hp.cycle;
    hp.stats[ST_BEATS0 + s]++;
    hp.stats[ST_PAYLOAD0 + s] += 4ull * payload_dws;
}

}  // namespace

extern "C" {

// ------------------------------------------------------------------ DPI (called by ep_fast_top)

// From the wrapper's initial block: DWs per beat of this build.
void siov_hp_init(int lanes) { hp.lanes = lanes; }

// Once per clock, before the beats: returns bit0 rx_req has a beat to present, bit1 rx_cpl has
// one, bits 4:2 tx ready (cpl, wr, rd) for the next cycle.
int siov_hp_poll(long long cycle, svBit rst) {
    hp.cycle = uint64_t(cycle);
    if (hp.recording && int(rst) != hp.last_rst) {
        hp.rec.push_back(REC_RST);
        rec_u64(hp.cycle);
        hp.rec.push_back(rst);
    }
    hp.last_rst = rst;
    hp.stats[ST_TICKS]++;
    // a completion / read taken last cycle while a posted write offered in an earlier cycle was
    // still open (at the end of that cycle) passed it: PCIe forbids that
    for (int64_t t : hp.taken_np)
        if (hp.open_since[TX_WR] >= 0 && hp.open_since[TX_WR] < t) hp.order_errors++;
    hp.taken_np.clear();
    int m = 0;
    for (int s = 0; s < 2; ++s) {
        const SourceState& st = hp.src[s];
        if (!st.q.empty() && (st.beat > 0 || st.q.front().due <= hp.cycle)) m |= 1 << s;
    }
    return m | int(hp.tx_ready_mask & 7) << 2;
}

// After the beats: the notify toggle (flips whenever something was queued for Python).
svBit siov_hp_notify() { return svBit(hp.notify & 1); }

// One beat the RTL transferred (valid && ready) on tx stream 2..4.
void siov_hp_tx_beat(int stream, const svBitVecVal* hdr, const svBitVecVal* data, const svBitVecVal* strb,
                     int prfx, svBit sop, svBit eop) {
    SinkState& k = hp.sink[stream];
    if (hp.open_since[stream] < 0) hp.open_since[stream] = int64_t(hp.cycle);
    if (sop) {
        if (k.in_frame) to_python(stream, std::move(k.cur), PY_NO_EOP);  // Python reports it
        k.cur = Frame();
        for (int i = 0; i < 4; ++i) k.cur.hdr[i] = hdr[3 - i];  // hdr[127:96] = DW0
        k.cur.prfx = uint32_t(prfx);
        k.in_frame = true;
    } else if (!k.in_frame) {
        to_python(stream, Frame(), PY_NO_SOP);  // a beat outside a frame: Python reports it
        return;
    }
    uint32_t s = data ? uint32_t(strb[0]) : 0;
    uint32_t n = 0;
    for (int lane = 0; s; ++lane, s >>= 1) {
        if (s & 1) {
            k.cur.data.push_back(data[lane]);
            ++n;
        }
    }
    count_beat(stream, n);
    if (eop) {
        if (stream != TX_WR) hp.taken_np.push_back(hp.open_since[stream]);  // checked next poll
        hp.open_since[stream] = -1;
        k.in_frame = false;
        hp.stats[ST_FRAMES0 + stream]++;
        dispatch(stream, std::move(k.cur));
        k.cur = Frame();
    }
}

// The next beat of rx stream 0/1 (call when the previous one was taken or none was valid).
void siov_hp_rx_beat(int stream, svBitVecVal* hdr, svBitVecVal* data, svBitVecVal* strb, int* prfx, svBit* valid,
                     svBit* sop, svBit* eop) {
    SourceState& st = hp.src[stream];
    if (st.valid) {  // the beat presented last cycle was taken
        st.valid = false;
        const Frame& f = st.q.front();
        size_t nbeats = f.data.empty() ? 1 : (f.data.size() + hp.lanes - 1) / hp.lanes;
        size_t done = st.beat * hp.lanes;
        count_beat(stream, uint32_t(f.data.size() > done ? std::min(f.data.size() - done, size_t(hp.lanes)) : 0));
        if (++st.beat >= nbeats) {
            hp.stats[ST_FRAMES0 + stream]++;
            st.q.pop_front();
            st.beat = 0;
        }
    }
    *valid = 0;
    if (st.q.empty()) return;
    const Frame& f = st.q.front();
    if (st.beat == 0 && f.due > hp.cycle) return;
    size_t nbeats = f.data.empty() ? 1 : (f.data.size() + hp.lanes - 1) / hp.lanes;
    for (int i = 0; i < 4; ++i) hdr[3 - i] = f.hdr[i];
    *prfx = int(f.prfx);
    uint32_t sb = 0;
    for (int lane = 0; lane < hp.lanes; ++lane) {
        size_t i = st.beat * hp.lanes + lane;
        if (i < f.data.size()) {
            data[lane] = f.data[i];
            sb |= 1u << lane;
        } else {
            data[lane] = 0;
        }
    }
    strb[0] = sb;
    *sop = st.beat == 0;
    *eop = st.beat + 1 == nbeats;
    *valid = 1;
    st.valid = true;
}

// a tx beat was offered but our ready was low
void siov_hp_tx_stall(int stream) {
    hp.stats[ST_STALL0 + stream]++;
    if (hp.open_since[stream] < 0) hp.open_since[stream] = int64_t(hp.cycle);
}
// an rx beat was presented but the RTL's ready was low
void siov_hp_rx_stall(int stream) { hp.stats[ST_STALL0 + stream]++; }

// ------------------------------------------------------------------ Python side (ctypes)

void hp_configure(int max_payload_dw, int rcb, int split_on_all_rcb, unsigned read_latency) {
    hp.max_payload_dw = max_payload_dw;
    hp.rcb = rcb;
    hp.split_on_all_rcb = split_on_all_rcb != 0;
    hp.read_latency = read_latency;
}

void hp_set_memory(uint64_t buffer, uint64_t base, uint64_t size) {
    hp.mem = reinterpret_cast<uint8_t*>(buffer);
    hp.mem_base = base;
    hp.mem_size = size;
    hp.ram.clear();
}

int hp_add_ram_window(uint64_t lo, uint64_t hi) {
    if (!hp.mem || lo < hp.mem_base || hi > hp.mem_base + hp.mem_size || hi <= lo) return -1;
    hp.ram.push_back(Window{lo, hi});
    return 0;
}

void hp_set_resolver(Resolver r) { hp.resolver = r; }

void hp_set_tx_ready(unsigned mask) { hp.tx_ready_mask = mask & 7; }

uint64_t hp_order_errors() { return hp.order_errors; }

void hp_reset() {
    for (SourceState& s : hp.src) {
        s.q.clear();
        s.beat = 0;
        s.valid = false;
    }
    for (SinkState& k : hp.sink) k = SinkState();
    for (int64_t& t : hp.open_since) t = -1;
    hp.taken_np.clear();
    hp.order_errors = 0;
    hp.to_py.clear();
    hp.tlb.clear();
    std::memset(hp.stats, 0, sizeof hp.stats);
    hp.cov_seen = 0;
    hp.recording = hp.replay = false;
    hp.rec.clear();
}

// IOTLB mirror, driven by the model's IotlbObserver
// perm: bit 0 write permitted, bit 1 read permitted (IotlbEntry.write_ok / read_ok)
void hp_tlb_put(uint32_t sid, int32_t pasid, int pmr, uint64_t pfn, uint64_t out_base, uint64_t off_mask,
                int perm) {
    hp.tlb[TlbKey{sid, pasid, pmr ? 1u : 0u, pfn}] = TlbVal{out_base, off_mask, (perm & 1) != 0, (perm & 2) != 0};
}

void hp_tlb_drop(uint32_t sid, int32_t pasid, int pmr, uint64_t pfn) {
    hp.tlb.erase(TlbKey{sid, pasid, pmr ? 1u : 0u, pfn});
}

void hp_tlb_clear() { hp.tlb.clear(); }

uint64_t hp_tlb_size() { return hp.tlb.size(); }

void hp_clear_stats() {
    uint64_t ticks = hp.stats[ST_TICKS];
    std::memset(hp.stats, 0, sizeof hp.stats);
    hp.stats[ST_TICKS] = ticks;
}

// Python -> RTL: a whole frame for rx_req (0) or rx_cpl (1); hdr = DW0..DW3
void hp_push(int stream, const uint32_t* hdr, uint32_t prfx, const uint32_t* data, uint32_t ndw) {
    Frame f;
    std::memcpy(f.hdr, hdr, sizeof f.hdr);
    f.prfx = prfx;
    f.data.assign(data, data + ndw);
    f.due = hp.cycle + 1;  // what "now" means to the next poll; kept for the replay
    hp.stats[ST_FROM_PY]++;
    rec_frame(stream & 1, f);
    hp.src[stream & 1].q.push_back(std::move(f));
}

// RTL -> Python: the oldest queued frame as [stream | kind << 8, prfx, ndw, hdr0..3, data...]
// (uint32 words);
// returns the number of words, 0 if nothing is queued, -needed if buf is too small.
int hp_pop(uint32_t* buf, int cap) {
    if (hp.to_py.empty()) return 0;
    const auto& [stream, f] = hp.to_py.front();
    int need = 7 + int(f.data.size());
    if (cap < need) return -need;
    buf[0] = uint32_t(stream);
    buf[1] = f.prfx;
    buf[2] = uint32_t(f.data.size());
    std::memcpy(buf + 3, f.hdr, sizeof f.hdr);
    if (!f.data.empty()) std::memcpy(buf + 7, f.data.data(), f.data.size() * 4);
    hp.to_py.pop_front();
    return need;
}

int hp_pending() { return int(hp.to_py.size()); }

// Start recording (call before reset: the replay starts from cycle 0 of the model).
void hp_record_start() {
    hp.rec.clear();
    hp.rec.push_back(REC_MAGIC);
    hp.rec.push_back(uint32_t(hp.lanes));
    hp.recording = true;
    hp.last_rst = -1;
    hp.tx_hash = 0xCBF29CE484222325ull;
    hp.tx_frames = 0;
}

// A named point in the recording (e.g. "traffic start"): id and the current cycle.
void hp_record_mark(uint32_t id) {
    if (!hp.recording) return;
    hp.rec.push_back(REC_MARK);
    hp.rec.push_back(id);
    rec_u64(hp.cycle);
}

// Stop and write the recording; returns the number of words written or -1.
long long hp_record_stop(const char* path) {
    if (!hp.recording) return -1;
    hp.recording = false;
    hp.rec.push_back(REC_END);
    rec_u64(hp.cycle);
    rec_u64(hp.tx_hash);
    rec_u64(hp.tx_frames);
    FILE* fp = std::fopen(path, "wb");
    if (!fp) return -1;
    size_t n = std::fwrite(hp.rec.data(), 4, hp.rec.size(), fp);
    std::fclose(fp);
    long long words = (long long)hp.rec.size();
    hp.rec.clear();
    hp.rec.shrink_to_fit();
    return n == size_t(words) ? words : -1;
}

uint64_t hp_tx_hash() { return hp.tx_hash; }
uint32_t hp_cov_seen() { return hp.cov_seen; }
uint64_t hp_tx_frames() { return hp.tx_frames; }

// Replay side (replay_main.cpp): load a recording into the source queues; returns the rst
// changes, marks and end record through the callbacks given.
struct HpReplayInfo {
    uint64_t end_cycle, tx_hash, tx_frames, frames;
    uint64_t rst_cycle[8];
    uint32_t rst_value[8];
    uint32_t n_rst;
    uint64_t mark_cycle[8];
    uint32_t mark_id[8];
    uint32_t n_mark;
};

int hp_replay_load(const char* path, HpReplayInfo* info) {
    FILE* fp = std::fopen(path, "rb");
    if (!fp) return -1;
    std::vector<uint32_t> w;
    uint32_t buf[4096];
    size_t n;
    while ((n = std::fread(buf, 4, 4096, fp)) > 0) w.insert(w.end(), buf, buf + n);
    std::fclose(fp);
    if (w.size() < 2 || w[0] != REC_MAGIC) return -2;
    if (int(w[1]) != hp.lanes) return -3;  // recorded with another DataWidth
    std::memset(info, 0, sizeof *info);
    hp_reset();
    hp.replay = true;
    size_t i = 2;
    auto u64 = [&](size_t k) { return uint64_t(w[k]) | uint64_t(w[k + 1]) << 32; };
    while (i < w.size()) {
        uint32_t t = w[i];
        if (t == REC_RST) {
            if (info->n_rst < 8) {
                info->rst_cycle[info->n_rst] = u64(i + 1);
                info->rst_value[info->n_rst++] = w[i + 3];
            }
            i += 4;
        } else if (t == REC_FRAME) {
            Frame f;
            int stream = int(w[i + 1]);
            f.due = u64(i + 2);
            f.prfx = w[i + 4];
            uint32_t nd = w[i + 5];
            std::memcpy(f.hdr, &w[i + 6], 16);
            f.data.assign(w.begin() + long(i + 10), w.begin() + long(i + 10 + nd));
            hp.src[stream & 1].q.push_back(std::move(f));
            info->frames++;
            i += 10 + nd;
        } else if (t == REC_MARK) {
            if (info->n_mark < 8) {
                info->mark_id[info->n_mark] = w[i + 1];
                info->mark_cycle[info->n_mark++] = u64(i + 2);
            }
            i += 4;
        } else if (t == REC_END) {
            info->end_cycle = u64(i + 1);
            info->tx_hash = u64(i + 3);
            info->tx_frames = u64(i + 5);
            return 0;
        } else {
            return -4;
        }
    }
    return -5;  // no end record
}

int hp_rx_idle() {
    return hp.src[0].q.empty() && hp.src[1].q.empty() && !hp.sink[TX_WR].in_frame && !hp.sink[TX_RD].in_frame &&
           !hp.sink[TX_CPL].in_frame;
}

int hp_stats(uint64_t* out, int n) {
    int k = n < ST_COUNT ? n : ST_COUNT;
    std::memcpy(out, hp.stats, size_t(k) * 8);
    return ST_COUNT;
}

uint64_t hp_cycle() { return hp.cycle; }

}  // extern "C"
