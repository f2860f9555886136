#include "host/ot/transport_map.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "host/errors.hpp"
#include "host/ot/checks.hpp"
#include "kernels/mixture.hpp"
#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

namespace fmg {
namespace {

MixtureView<double> view_of(const PointMatrix& atoms) {
  return MixtureView<double>{atoms.data(), nullptr,
                             static_cast<int>(atoms.rows()),
                             static_cast<int>(atoms.cols())};
}

// Read-only view of one row of a row-major matrix, in the vector interface
// of the per-sample kernels.
struct RowView {
  const double* data;
  int n;

  int size() const { return n; }
  double operator[](int j) const { return data[j]; }
};

}  // namespace

std::vector<int> laguerre_labels(const PointMatrix& points,
                                 const PointMatrix& atoms,
                                 const Eigen::VectorXd& psi) {
  detail::check_atoms(atoms);
  detail::check_potentials(atoms, psi);
  detail::check_points(points, atoms.cols(), "points");

  const MixtureView<double> mix = view_of(atoms);
  const std::int64_t n = points.rows();
  std::vector<int> labels(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const RowView x{points.row(i).data(), mix.dim};
    labels[static_cast<std::size_t>(i)] = laguerre_cell(mix, psi.data(), x);
  }
  return labels;
}

PointMatrix ot_trajectories(const PointMatrix& points, const PointMatrix& atoms,
                            const Eigen::VectorXd& psi,
                            const std::vector<double>& times) {
  for (std::size_t t = 0; t < times.size(); ++t) {
    if (!(times[t] >= 0.0 && times[t] <= 1.0)) {
      std::ostringstream message;
      message << "times[" << t << "] = " << times[t]
              << "; expected a time in [0, 1]";
      throw InvalidArgument(message.str());
    }
  }
  const std::vector<int> labels = laguerre_labels(points, atoms, psi);

  const Eigen::Index n = points.rows();
  const Eigen::Index num_times = static_cast<Eigen::Index>(times.size());
  PointMatrix paths(num_times * n, atoms.cols());
  for (Eigen::Index t = 0; t < num_times; ++t) {
    const double s = times[static_cast<std::size_t>(t)];
    for (Eigen::Index i = 0; i < n; ++i) {
      paths.row(t * n + i) =
          (1.0 - s) * points.row(i) +
          s * atoms.row(labels[static_cast<std::size_t>(i)]);
    }
  }
  return paths;
}

TransportCostEstimate estimate_transport_cost(const PointMatrix& atoms,
                                              const Eigen::VectorXd& psi,
                                              std::int64_t samples,
                                              std::uint64_t seed) {
  detail::check_atoms(atoms);
  detail::check_potentials(atoms, psi);
  if (samples < 1) {
    std::ostringstream message;
    message << "samples is " << samples << "; expected >= 1";
    throw InvalidArgument(message.str());
  }

  const MixtureView<double> mix = view_of(atoms);
  // Each chunk is summed by one thread in index order and the chunk sums
  // are added in chunk order, so no rounding depends on the thread count.
  const std::int64_t chunk = 4096;
  const std::int64_t num_chunks = (samples + chunk - 1) / chunk;
  std::vector<double> sums(static_cast<std::size_t>(num_chunks), 0.0);
  std::vector<double> sums_of_squares(static_cast<std::size_t>(num_chunks),
                                      0.0);
#pragma omp parallel
  {
    std::vector<double> scratch(static_cast<std::size_t>(mix.dim));
    StridedVec<double> x{scratch.data(), mix.dim, 1};
#pragma omp for schedule(dynamic, 16)
    for (std::int64_t c = 0; c < num_chunks; ++c) {
      const std::int64_t end = std::min(samples, (c + 1) * chunk);
      double sum = 0.0;
      double sum_of_squares = 0.0;
      for (std::int64_t i = c * chunk; i < end; ++i) {
        philox_base_sample(seed, static_cast<std::uint64_t>(i), x);
        const int k = laguerre_cell(mix, psi.data(), x);
        const double cost = squared_distance(x, 1.0, mix.atom(k));
        sum += cost;
        sum_of_squares += cost * cost;
      }
      sums[static_cast<std::size_t>(c)] = sum;
      sums_of_squares[static_cast<std::size_t>(c)] = sum_of_squares;
    }
  }

  double sum = 0.0;
  double sum_of_squares = 0.0;
  for (std::int64_t c = 0; c < num_chunks; ++c) {
    sum += sums[static_cast<std::size_t>(c)];
    sum_of_squares += sums_of_squares[static_cast<std::size_t>(c)];
  }
  const double n = static_cast<double>(samples);
  TransportCostEstimate estimate;
  estimate.samples = samples;
  estimate.value = sum / n;
  const double variance =
      samples > 1 ? std::max(0.0, (sum_of_squares - n * estimate.value *
                                                        estimate.value) /
                                      (n - 1.0))
                  : 0.0;
  estimate.standard_error = std::sqrt(variance / n);
  return estimate;
}

}  // namespace fmg
