// Argument checks shared by the analysis functions.
#pragma once

#include <string>

#include "host/format.hpp"
#include "kernels/mixture.hpp"

namespace fmg::detail {


/// Throws InvalidArgument unless `mix` has K >= 1 atoms of dimension
/// d >= 1, finite atoms, log weights that are finite or -inf, and at least
/// one atom of positive weight.
template <class T>
void validate_mixture(const MixtureView<T>& mix);

/// Throws InvalidArgument naming t unless 0 <= t < 1.
void validate_time_below_one(double t);

}  // namespace fmg::detail
