// SIMD lane engine of the CPU backend for dimensions 1 to 8.
//
// W samples (32 in double, 64 in float) advance in lockstep, one per vector
// lane: every velocity evaluation and every Runge-Kutta stage is a loop over
// lanes that the compiler vectorises. Under Dormand-Prince each lane keeps
// its own time and step. A lane whose sample finishes takes the next sample
// of its range at once, so lanes stay busy when samples need different step
// counts. Results depend only on the sample, never on its lane, the thread
// or the instruction set picked at run time (AVX-512, AVX2 or baseline).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "kernels/batch.hpp"

namespace fmg::lanes {

/// Largest dimension the lane engine handles; larger ones use the
/// per-sample path, whose inner loops over d vectorise instead.
inline constexpr int max_lane_dim = 8;

/// Samples [begin, end) of one chunk for the lane engine.
template <class T>
struct LaneJob {
  MixtureView<T> mixture;
  FlowProblem<T> problem;
  const FlowChunk<T>* chunk;
  std::size_t begin;
  std::size_t end;
};

/// Integrates the job's samples, writes the chunk's requested outputs for
/// them and adds their counts to `tally`. mixture.dim must be 1 to max_lane_dim.
void run_lanes(const LaneJob<float>& job, FlowTally& tally);
void run_lanes(const LaneJob<double>& job, FlowTally& tally);

/// The instruction set the lane engine uses on this processor: "avx512",
/// "avx2" or "baseline".
const char* lane_instruction_set();

/// Every instruction set this processor can run the lane engine with,
/// "baseline" first.
std::vector<std::string> supported_lane_instruction_sets();

/// run_lanes with the instruction set named, one of
/// supported_lane_instruction_sets(); throws InvalidArgument otherwise. For
/// checking that results do not depend on the instruction set.
void run_lanes_on(const std::string& name, const LaneJob<float>& job, FlowTally& tally);
void run_lanes_on(const std::string& name, const LaneJob<double>& job, FlowTally& tally);

}  // namespace fmg::lanes
