// Argument checks shared by the optimal transport functions.
#pragma once

#include <Eigen/Core>

#include "host/ot/cell_measures.hpp"

namespace fmg {
namespace detail {

/// Throws InvalidArgument unless atoms has at least one row and one column
/// and only finite entries.
void check_atoms(const PointMatrix& atoms);

/// Throws InvalidArgument unless psi has one entry per atom, each finite or
/// -inf (an excluded atom), with at least one finite.
void check_potentials(const PointMatrix& atoms, const Eigen::VectorXd& psi);

/// Throws InvalidArgument unless points has `dim` columns and only finite
/// entries; `name` names the argument in the message.
void check_points(const PointMatrix& points, Eigen::Index dim,
                  const char* name);

}  // namespace detail
}  // namespace fmg
