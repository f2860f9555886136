// Problems of the large-N flow benchmark: the built-in example, a mixture
// file, or a synthetic mixture of K equal-weight atoms in R^d.
#pragma once

#include <cstdint>
#include <string>

#include "host/io/mixture_io.hpp"

namespace fmg::bench {

/// Half-width r of the cube [-r, r)^d that contains the synthetic atoms.
inline constexpr double synthetic_atom_range = 2.0;

/// Returns a mixture of `num_atoms` atoms in R^`dim` with equal weights
/// 1 / num_atoms. Coordinate j of atom k is a fixed hash of (k, j) mapped to
/// [-synthetic_atom_range, synthetic_atom_range), so the same (K, d) always
/// gives the same atoms, and atom k keeps its first coordinates as d grows.
///
/// Throws fmg::InvalidArgument when num_atoms or dim is below 1.
Mixture synthetic_mixture(int num_atoms, int dim);

/// A benchmark problem: its mixture and the name that records carry.
struct BenchProblem {
  std::string name;  ///< "builtin", "synthetic" or the mixture file's path.
  Mixture mixture;
};

/// Returns the built-in three-atom example.
BenchProblem builtin_problem();

/// Returns the synthetic problem of `num_atoms` atoms in R^`dim`.
BenchProblem synthetic_problem(int num_atoms, int dim);

/// Reads the mixture file at `path`; throws fmg::FileError as
/// read_mixture_file does.
BenchProblem file_problem(const std::string& path);

}  // namespace fmg::bench
