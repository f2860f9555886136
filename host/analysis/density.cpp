#include "host/analysis/density.hpp"

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "host/analysis/validate.hpp"
#include "host/errors.hpp"
#include "kernels/vec.hpp"

namespace fmg {
namespace {

void validate_axis(const char* axis, double min, double max, int count) {
  if (count < 2) {
    throw InvalidArgument(std::string("invalid number of grid points n") +
                          axis + " = " + std::to_string(count) +
                          ": it must be at least 2");
  }
  if (!std::isfinite(min) || !std::isfinite(max)) {
    throw InvalidArgument(std::string("invalid grid bounds ") + axis +
                          " in [" + format_number(min) + ", " +
                          format_number(max) +
                          "]: both bounds must be finite");
  }
  if (!(min < max)) {
    throw InvalidArgument(std::string("invalid grid bounds ") + axis +
                          " in [" + format_number(min) + ", " +
                          format_number(max) +
                          "]: the lower bound must be below the upper one");
  }
}

/// Returns coordinate i of `count` equally spaced values from min to max,
/// with the last one exactly max.
double grid_coordinate(double min, double max, int count, int i) {
  if (i == count - 1) return max;
  return min + (max - min) * static_cast<double>(i) /
                   static_cast<double>(count - 1);
}

}  // namespace

std::vector<double> log_density_grid(const MixtureView<double>& mix,
                                     ScheduleKind kind, double t,
                                     double x_min, double x_max, int nx,
                                     double y_min, double y_max, int ny) {
  detail::validate_mixture(mix);
  if (mix.dim != 2) {
    throw InvalidArgument("invalid mixture dimension " +
                          std::to_string(mix.dim) +
                          ": the density grid needs dimension 2");
  }
  detail::validate_time_below_one(t);
  validate_axis("x", x_min, x_max, nx);
  validate_axis("y", y_min, y_max, ny);

  std::vector<double> values(static_cast<std::size_t>(nx) *
                             static_cast<std::size_t>(ny));
#pragma omp parallel for schedule(static)
  for (int iy = 0; iy < ny; ++iy) {
    LocalVec<double, 2> x;
    LocalVec<double, 2> scratch;
    x[1] = grid_coordinate(y_min, y_max, ny, iy);
    double* row = values.data() + static_cast<std::size_t>(iy) * nx;
    for (int ix = 0; ix < nx; ++ix) {
      x[0] = grid_coordinate(x_min, x_max, nx, ix);
      row[ix] = log_density(mix, kind, t, x, scratch);
    }
  }
  return values;
}

std::vector<double> log_density_points(const MixtureView<double>& mix,
                                       ScheduleKind kind, double t,
                                       const double* points, std::size_t n) {
  detail::validate_mixture(mix);
  detail::validate_time_below_one(t);
  if (n > 0 && points == nullptr) {
    throw InvalidArgument("invalid points: the array is null but n = " +
                          std::to_string(n));
  }

  const int d = mix.dim;
  std::vector<double> values(n);
  const auto count = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel
  {
    std::vector<double> scratch(d);
    StridedVec<double> scratch_view{scratch.data(), d, 1};
#pragma omp for schedule(static)
    for (std::ptrdiff_t i = 0; i < count; ++i) {
      const StridedVec<const double> x{points + i * d, d, 1};
      values[i] = log_density(mix, kind, t, x, scratch_view);
    }
  }
  return values;
}

}  // namespace fmg
