#include "host/analysis/validate.hpp"
#include "host/format.hpp"

#include <cmath>
#include <cstddef>
#include <sstream>

#include "host/errors.hpp"

namespace fmg::detail {

template <class T>
void validate_mixture(const MixtureView<T>& mix) {
  if (mix.num_atoms < 1) {
    throw InvalidArgument("invalid number of atoms " +
                          std::to_string(mix.num_atoms) +
                          ": a mixture needs at least 1");
  }
  if (mix.dim < 1) {
    throw InvalidArgument("invalid dimension " + std::to_string(mix.dim) +
                          ": it must be at least 1");
  }
  if (mix.atoms == nullptr || mix.log_weights == nullptr) {
    throw InvalidArgument("invalid mixture: atoms and log weights must not "
                          "be null");
  }

  const std::size_t count =
      static_cast<std::size_t>(mix.num_atoms) * static_cast<std::size_t>(mix.dim);
  for (std::size_t i = 0; i < count; ++i) {
    if (!std::isfinite(mix.atoms[i])) {
      throw InvalidArgument("invalid atom coordinate " +
                            format_number(mix.atoms[i]) + " at atom " +
                            std::to_string(i / mix.dim) + ", coordinate " +
                            std::to_string(i % mix.dim) +
                            ": atoms must be finite");
    }
  }

  bool any_positive_weight = false;
  for (int k = 0; k < mix.num_atoms; ++k) {
    const double log_w = mix.log_weights[k];
    if (std::isnan(log_w) || log_w == INFINITY) {
      throw InvalidArgument("invalid log weight " + format_number(log_w) +
                            " of atom " + std::to_string(k) +
                            ": it must be finite, or -inf for weight 0");
    }
    any_positive_weight = any_positive_weight || std::isfinite(log_w);
  }
  if (!any_positive_weight) {
    throw InvalidArgument("invalid mixture: every log weight is -inf; at "
                          "least one atom needs a positive weight");
  }
}

template void validate_mixture(const MixtureView<double>& mix);
template void validate_mixture(const MixtureView<float>& mix);

void validate_time_below_one(double t) {
  if (!(t >= 0.0 && t < 1.0)) {
    throw InvalidArgument("invalid time t = " + format_number(t) +
                          ": it must lie in [0, 1), because a(t) vanishes "
                          "at t = 1");
  }
}

}  // namespace fmg::detail
