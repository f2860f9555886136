#include "bench/flow/bench_problem.hpp"

#include <cstddef>
#include <string>

#include "host/errors.hpp"

namespace fmg::bench {
namespace {

// SplitMix64 finaliser (Steele, Lea and Flood, "Fast splittable
// pseudorandom number generators", OOPSLA 2014).
std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

Mixture synthetic_mixture(int num_atoms, int dim) {
  if (num_atoms < 1) {
    throw InvalidArgument("invalid number of atoms " +
                          std::to_string(num_atoms) +
                          ": it must be at least 1");
  }
  if (dim < 1) {
    throw InvalidArgument("invalid dimension " + std::to_string(dim) +
                          ": it must be at least 1");
  }

  Mixture mixture;
  mixture.dim = dim;
  mixture.atoms.resize(static_cast<std::size_t>(num_atoms) * dim);
  for (int k = 0; k < num_atoms; ++k) {
    const std::uint64_t atom_key = splitmix64(static_cast<std::uint64_t>(k));
    for (int j = 0; j < dim; ++j) {
      const std::uint64_t bits =
          splitmix64(atom_key ^ static_cast<std::uint64_t>(j));
      // The top 53 bits give a uniform double in [0, 1).
      const double unit = static_cast<double>(bits >> 11) * 0x1.0p-53;
      mixture.atoms[static_cast<std::size_t>(k) * dim + j] =
          synthetic_atom_range * (2.0 * unit - 1.0);
    }
  }
  mixture.weights.assign(static_cast<std::size_t>(num_atoms),
                         1.0 / static_cast<double>(num_atoms));
  return mixture;
}

BenchProblem builtin_problem() { return {"builtin", builtin_example()}; }

BenchProblem synthetic_problem(int num_atoms, int dim) {
  return {"synthetic", synthetic_mixture(num_atoms, dim)};
}

BenchProblem file_problem(const std::string& path) {
  return {path, read_mixture_file(path)};
}

}  // namespace fmg::bench
