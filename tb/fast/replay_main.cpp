// SPDX-License-Identifier: Apache-2.0
// The no-Python limit of the fast link: the same Verilated ep_fast_top model (linked from the
// fast build's own objects) fed, cycle by cycle, the stimulus a cocotb run recorded
// (hp_record_start/stop in hostport.cpp): every frame the RTL received on rx_req and rx_cpl,
// at the cycle it could first be presented, and the reset. No Python, no VPI callbacks, no
// IOMMU: whatever the RTL sends up is only hashed, and the hash must equal the recorded run's,
// which proves the harness simulated exactly the same workload.
//
//   replay <recording> [json-out]   prints and writes {cycles, seconds, cycles_per_s, window...}

#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

#include "Vtop.h"
#include "verilated.h"

extern "C" {
struct HpReplayInfo {
    uint64_t end_cycle, tx_hash, tx_frames, frames;
    uint64_t rst_cycle[8];
    uint32_t rst_value[8];
    uint32_t n_rst;
    uint64_t mark_cycle[8];
    uint32_t mark_id[8];
    uint32_t n_mark;
};
int hp_replay_load(const char* path, HpReplayInfo* info);
uint64_t hp_cycle();
uint64_t hp_tx_hash();
uint64_t hp_tx_frames();
}

double sc_time_stamp() { return 0; }  // legacy hook; time lives in the VerilatedContext

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s RECORDING [JSON_OUT]\n", argv[0]);
        return 2;
    }
    const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    ctx->commandArgs(1, argv);
    const std::unique_ptr<Vtop> top{new Vtop{ctx.get(), ""}};
    HpReplayInfo info;
    int rc = hp_replay_load(argv[1], &info);
    if (rc != 0) {
        std::fprintf(stderr, "replay: cannot load %s (%d)\n", argv[1], rc);
        return 2;
    }
    // marks: 1 = traffic start, 2 = traffic end (tests/bench/bench_cosim.py)
    uint64_t w0 = 0, w1 = info.end_cycle;
    for (uint32_t k = 0; k < info.n_mark; ++k) {
        if (info.mark_id[k] == 1) w0 = info.mark_cycle[k];
        if (info.mark_id[k] == 2) w1 = info.mark_cycle[k];
    }
    uint32_t next_rst = 0;
    top->rst = info.n_rst ? info.rst_value[0] : 0;
    using clk = std::chrono::steady_clock;
    auto t_start = clk::now();
    clk::time_point t_w0 = t_start, t_w1 = t_start;  // the traffic window; after it: the idle tail
    // CPU time of this process beside wall time: on a shared machine the CPU seconds are what the
    // wall seconds of a quiet machine would be (one thread, no I/O in the loop)
    std::clock_t c_w0 = std::clock(), c_w1 = c_w0;
    bool in_w = false, done_w = false;
    while (hp_cycle() < info.end_cycle) {
        // the model's wrapper polls the host port at each rising edge with cycle_q; apply the
        // recorded reset value for the coming edge before evaluating it
        uint64_t next = hp_cycle() + 1;
        while (next_rst < info.n_rst && info.rst_cycle[next_rst] <= next) top->rst = info.rst_value[next_rst++];
        if (!in_w && !done_w && hp_cycle() >= w0) {
            in_w = true;
            t_w0 = clk::now();
            c_w0 = std::clock();
        }
        if (in_w && hp_cycle() >= w1) {
            in_w = false;
            done_w = true;
            t_w1 = clk::now();
            c_w1 = std::clock();
        }
        top->eval();
        if (!top->eventsPending()) break;
        ctx->time(top->nextTimeSlot());
    }
    if (in_w) {
        t_w1 = clk::now();
        c_w1 = std::clock();
    }
    double wcpu = double(c_w1 - c_w0) / CLOCKS_PER_SEC;
    auto t_end = clk::now();
    top->final();
    double secs = std::chrono::duration<double>(t_end - t_start).count();
    double wsecs = std::chrono::duration<double>(t_w1 - t_w0).count();
    double tsecs = done_w ? std::chrono::duration<double>(t_end - t_w1).count() : 0.0;
    uint64_t tail = done_w && info.end_cycle > w1 ? info.end_cycle - w1 : 0;
    uint64_t cycles = hp_cycle();
    bool same = hp_tx_hash() == info.tx_hash && hp_tx_frames() == info.tx_frames;
    char out[1024];
    std::snprintf(out, sizeof out,
                  "{\"cycles\": %llu, \"seconds\": %.6f, \"cycles_per_s\": %.1f, \"window_cycles\": %llu, "
                  "\"window_seconds\": %.6f, \"window_cycles_per_s\": %.1f, \"frames_in\": %llu, "
                  "\"frames_out\": %llu, \"tail_cycles\": %llu, \"tail_cycles_per_s\": %.1f, "
                  "\"window_cpu_s\": %.6f, \"window_cycles_per_cpu_s\": %.1f, \"same_output_as_recorded\": %s}\n",
                  (unsigned long long)cycles, secs, cycles / secs, (unsigned long long)(w1 - w0), wsecs,
                  wsecs > 0 ? (w1 - w0) / wsecs : 0.0, (unsigned long long)info.frames,
                  (unsigned long long)hp_tx_frames(), (unsigned long long)tail, tsecs > 0 ? tail / tsecs : 0.0,
                  wcpu, wcpu > 0 ? (w1 - w0) / wcpu : 0.0, same ? "true" : "false");
    std::fputs(out, stdout);
    if (argc > 2) {
        FILE* fp = std::fopen(argv[2], "w");
        if (fp) {
            std::fputs(out, fp);
            std::fclose(fp);
        }
    }
    return same ? 0 : 1;
}
