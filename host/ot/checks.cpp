#include "host/ot/checks.hpp"

#include <cmath>
#include <sstream>
#include <string>

#include "host/errors.hpp"

namespace fmg {
namespace detail {

void check_atoms(const PointMatrix& atoms) {
  if (atoms.rows() < 1 || atoms.cols() < 1) {
    std::ostringstream message;
    message << "atoms is a " << atoms.rows() << " x " << atoms.cols()
            << " matrix; expected at least one atom (row) of dimension >= 1";
    throw InvalidArgument(message.str());
  }
  for (Eigen::Index k = 0; k < atoms.rows(); ++k) {
    for (Eigen::Index j = 0; j < atoms.cols(); ++j) {
      if (!std::isfinite(atoms(k, j))) {
        std::ostringstream message;
        message << "atom " << k << " has coordinate " << j << " = "
                << atoms(k, j) << "; expected a finite value";
        throw InvalidArgument(message.str());
      }
    }
  }
}

void check_potentials(const PointMatrix& atoms, const Eigen::VectorXd& psi) {
  if (psi.size() != atoms.rows()) {
    std::ostringstream message;
    message << "psi has " << psi.size() << " entries; expected one per atom ("
            << atoms.rows() << ")";
    throw InvalidArgument(message.str());
  }
  bool any_finite = false;
  for (Eigen::Index k = 0; k < psi.size(); ++k) {
    const double value = psi(k);
    if (std::isfinite(value)) {
      any_finite = true;
    } else if (!(std::isinf(value) && value < 0.0)) {
      std::ostringstream message;
      message << "psi[" << k << "] = " << value
              << "; expected a finite value, or -inf to exclude the atom";
      throw InvalidArgument(message.str());
    }
  }
  if (!any_finite) {
    throw InvalidArgument(
        "every entry of psi is -inf; at least one atom must have a finite "
        "potential");
  }
}

void check_points(const PointMatrix& points, Eigen::Index dim,
                  const char* name) {
  if (points.cols() != dim) {
    std::ostringstream message;
    message << name << " has " << points.cols()
            << " columns; expected the atoms' dimension " << dim;
    throw InvalidArgument(message.str());
  }
  for (Eigen::Index i = 0; i < points.rows(); ++i) {
    for (Eigen::Index j = 0; j < points.cols(); ++j) {
      if (!std::isfinite(points(i, j))) {
        std::ostringstream message;
        message << name << " row " << i << " has coordinate " << j << " = "
                << points(i, j) << "; expected a finite value";
        throw InvalidArgument(message.str());
      }
    }
  }
}

}  // namespace detail
}  // namespace fmg
