// Helpers of the velocity-path tests: one flow run with its endpoints and
// labels, and a synthetic mixture that is the same on every platform.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "host/driver.hpp"
#include "host/io/mixture_io.hpp"

namespace fmg::testing_support {

/// Outputs of one run_flow call.
template <class Value>
struct PathRun {
  std::vector<Value> endpoints;
  std::vector<std::int32_t> labels;
  FlowTally tally;
  std::string backend;
  std::string path;  ///< The velocity path that ran.
};

/// Runs `options` on `backend` with velocity path `path`, in the precision
/// of Value, from `starts` when given, and collects the outputs.
template <class Value>
PathRun<Value> run_path(const Mixture& mixture, FlowRunOptions options,
                        BackendChoice backend, VelocityPath path,
                        const std::vector<double>* starts = nullptr) {
  options.backend = backend;
  options.velocity_path = path;
  options.precision = std::is_same_v<Value, float> ? Precision::float32
                                                   : Precision::float64;
  options.progress = false;
  PathRun<Value> out;
  FlowRunIo io;
  io.starts = starts;
  io.endpoints = [&out](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const Value*>(data);
    out.endpoints.insert(out.endpoints.end(), p, p + bytes / sizeof(Value));
  };
  io.labels = [&out](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const std::int32_t*>(data);
    out.labels.insert(out.labels.end(), p, p + bytes / sizeof(std::int32_t));
  };
  const FlowRunResult result = run_flow(mixture, options, io);
  out.tally = result.tally;
  out.backend = result.backend;
  out.path = result.velocity_path;
  return out;
}

/// Returns K equal-weight atoms in R^d whose coordinate j of atom k is a
/// fixed hash of (k, j) (splitmix64) mapped to [-2, 2).
inline Mixture hashed_mixture(int num_atoms, int dim) {
  Mixture mixture;
  mixture.dim = dim;
  for (int k = 0; k < num_atoms; ++k) {
    for (int j = 0; j < dim; ++j) {
      std::uint64_t z = (static_cast<std::uint64_t>(k) << 32) ^
                        static_cast<std::uint64_t>(j) ^ 0x9e3779b97f4a7c15ull;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      z ^= z >> 31;
      mixture.atoms.push_back(4.0 * static_cast<double>(z >> 11) * 0x1.0p-53 -
                              2.0);
    }
    mixture.weights.push_back(1.0 / num_atoms);
  }
  return mixture;
}

}  // namespace fmg::testing_support
