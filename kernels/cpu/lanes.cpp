// Picks the lane engine's instruction set once, from the processor's
// features.
#include "kernels/cpu/lanes.hpp"

#include <algorithm>

#include "host/errors.hpp"

namespace fmg::lanes {

namespace avx512 {
void run(const LaneJob<float>& job, FlowTally& tally);
void run(const LaneJob<double>& job, FlowTally& tally);
}  // namespace avx512
namespace avx2 {
void run(const LaneJob<float>& job, FlowTally& tally);
void run(const LaneJob<double>& job, FlowTally& tally);
}  // namespace avx2
namespace baseline {
void run(const LaneJob<float>& job, FlowTally& tally);
void run(const LaneJob<double>& job, FlowTally& tally);
}  // namespace baseline

namespace {

enum class InstructionSet { avx512, avx2, baseline };

InstructionSet detect() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl")) {
    return InstructionSet::avx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return InstructionSet::avx2;
  }
#endif
  return InstructionSet::baseline;
}

InstructionSet instruction_set() {
  static const InstructionSet chosen = detect();
  return chosen;
}

template <class T>
void dispatch(const LaneJob<T>& job, FlowTally& tally) {
  switch (instruction_set()) {
    case InstructionSet::avx512: avx512::run(job, tally); break;
    case InstructionSet::avx2: avx2::run(job, tally); break;
    default: baseline::run(job, tally); break;
  }
}

}  // namespace

void run_lanes(const LaneJob<float>& job, FlowTally& tally) { dispatch(job, tally); }
void run_lanes(const LaneJob<double>& job, FlowTally& tally) { dispatch(job, tally); }

std::vector<std::string> supported_lane_instruction_sets() {
  std::vector<std::string> names{"baseline"};
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) names.push_back("avx2");
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl")) {
    names.push_back("avx512");
  }
#endif
  return names;
}

template <class T>
void run_on(const std::string& name, const LaneJob<T>& job, FlowTally& tally) {
  const auto supported = supported_lane_instruction_sets();
  if (std::find(supported.begin(), supported.end(), name) == supported.end()) {
    throw InvalidArgument("lane instruction set '" + name +
                          "' is not supported by this processor");
  }
  if (name == "avx512") {
    avx512::run(job, tally);
  } else if (name == "avx2") {
    avx2::run(job, tally);
  } else {
    baseline::run(job, tally);
  }
}

void run_lanes_on(const std::string& name, const LaneJob<float>& job, FlowTally& tally) {
  run_on(name, job, tally);
}
void run_lanes_on(const std::string& name, const LaneJob<double>& job, FlowTally& tally) {
  run_on(name, job, tally);
}

const char* lane_instruction_set() {
  switch (instruction_set()) {
    case InstructionSet::avx512: return "avx512";
    case InstructionSet::avx2: return "avx2";
    default: return "baseline";
  }
}

}  // namespace fmg::lanes
