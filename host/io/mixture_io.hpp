// The target mixture of Dirac masses: its JSON file format, validation and
// log weights.
//
// File format: {"atoms": [[x, y, ...], ...], "weights": [w_0, ...]}, one
// array of d coordinates per atom and one weight per atom. Integers are
// accepted as numbers.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/common.hpp"

namespace fmg {

/// A mixture sum_k w_k delta_{mu_k} of K Dirac masses in R^dim.
struct Mixture {
  int dim = 0;
  std::vector<double> atoms;    ///< K x dim coordinates, row-major.
  std::vector<double> weights;  ///< K weights.

  /// Returns K, the number of atoms: atoms.size() / dim, or 0 if dim < 1.
  int num_atoms() const;
};

/// Returns the three-atom example in R^2: atoms (2.4, 0), (-1.4, 2),
/// (-1.4, -2) with weights 0.45, 0.30, 0.25.
Mixture builtin_example();

/// Parses a mixture from JSON `text`; `source` names the text (a file name)
/// in error messages.
///
/// Throws FileError for invalid JSON, giving the line and column (1-based).
/// Throws FileError naming the path within the document (such as
/// "atoms[3][1]") for a document of the wrong structure. That is a document
/// that is not an object, a missing or unknown key, atoms that are not a
/// non-empty array of non-empty arrays of numbers, atoms of different
/// dimensions, weights that are not an array of numbers, or a weight count
/// other than the atom count. Values are checked by validate_mixture, not
/// here.
Mixture parse_mixture_json(const std::string& text, const std::string& source);

/// Reads and parses the mixture file at `path`. Throws FileError naming the
/// file and the operating system's reason when it cannot be read, then as
/// parse_mixture_json does.
Mixture read_mixture_file(const std::string& path);

/// Returns the largest coordinate magnitude of atoms and points at
/// `precision`: 1e150 in float64 and 1e15 in float32, which keep squared
/// distances finite.
double max_coordinate_magnitude(Precision precision);

/// Returns max_coordinate_magnitude(precision) as written in messages:
/// "1e150" or "1e15".
const char* max_coordinate_magnitude_text(Precision precision);

/// Checks that `mixture` is usable at `precision`. Throws InvalidArgument
/// naming the offending value (its index and value) and what is valid when:
/// there are no atoms; dim < 1 or atoms.size() is not K * dim; more than
/// INT_MAX atoms; a coordinate is NaN or infinite, or its magnitude exceeds
/// 1e150 (float64) or 1e15 (float32), the limits that keep squared
/// distances finite; the weight count differs from K; a weight is negative,
/// NaN or infinite; every weight is zero; or the weights do not sum to 1
/// within 100 * K * machine epsilon of `precision`. Single zero weights are
/// valid. Runs in O(K * dim).
void validate_mixture(const Mixture& mixture, Precision precision);

/// Returns log(w_k / sum_j w_j) for each atom, -inf for a zero weight.
/// Expects a mixture that passed validate_mixture.
std::vector<double> log_weights(const Mixture& mixture);

/// Returns the mixture as {"atoms": [[...], ...], "weights": [...]}, the
/// format that parse_mixture_json reads.
nlohmann::json mixture_to_json(const Mixture& mixture);

}  // namespace fmg
