#include "host/ot/monte_carlo.hpp"

#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "host/errors.hpp"
#include "host/ot/checks.hpp"
#include "kernels/ot_mass.hpp"

namespace fmg {
namespace {

void check_options(const MonteCarloOptions& options) {
  if (options.samples < 1) {
    std::ostringstream message;
    message << "samples is " << options.samples << "; expected >= 1";
    throw InvalidArgument(message.str());
  }
  if (!std::isfinite(options.band_width) || options.band_width < 0.0) {
    std::ostringstream message;
    message << "band_width is " << options.band_width
            << "; expected a finite value >= 0 (0 picks the default)";
    throw InvalidArgument(message.str());
  }
}

}  // namespace

double default_band_width(const PointMatrix& atoms, const Eigen::VectorXd& psi,
                          std::int64_t samples) {
  double min_distance = std::numeric_limits<double>::infinity();
  for (Eigen::Index k = 0; k < atoms.rows(); ++k) {
    if (!std::isfinite(psi(k))) continue;
    for (Eigen::Index j = k + 1; j < atoms.rows(); ++j) {
      if (!std::isfinite(psi(j))) continue;
      const double distance = (atoms.row(k) - atoms.row(j)).norm();
      if (distance > 0.0 && distance < min_distance) min_distance = distance;
    }
  }
  const double scale = std::isfinite(min_distance) ? min_distance : 1.0;
  const double n = static_cast<double>(samples < 1 ? 1 : samples);
  return scale * std::pow(n, -0.2);
}

CellMeasures monte_carlo_cell_measures(const PointMatrix& atoms,
                                       const Eigen::VectorXd& psi,
                                       const MonteCarloOptions& options) {
  detail::check_atoms(atoms);
  detail::check_potentials(atoms, psi);
  check_options(options);

  const Eigen::Index num_atoms = atoms.rows();
  const double band_width = options.band_width > 0.0
                                ? options.band_width
                                : default_band_width(atoms, psi, options.samples);
  const MixtureView<double> mix{atoms.data(), nullptr,
                                static_cast<int>(num_atoms),
                                static_cast<int>(atoms.cols())};
  std::vector<std::int64_t> cell_counts(static_cast<std::size_t>(num_atoms));
  std::vector<std::int64_t> band_counts(
      static_cast<std::size_t>(num_atoms * num_atoms));
  if (options.backend == MonteCarloBackend::cuda) {
    cuda::count_laguerre_cells(mix, psi.data(), options.seed,
                               options.first_index, options.samples,
                               band_width, cell_counts.data(),
                               band_counts.data());
  } else {
    cpu::count_laguerre_cells(mix, psi.data(), options.seed,
                              options.first_index, options.samples,
                              band_width, cell_counts.data(),
                              band_counts.data());
  }

  const double n = static_cast<double>(options.samples);
  CellMeasures measures;
  measures.samples = options.samples;
  measures.band_width = band_width;
  measures.masses.resize(num_atoms);
  measures.standard_errors.resize(num_atoms);
  for (Eigen::Index k = 0; k < num_atoms; ++k) {
    const double mass = static_cast<double>(cell_counts[k]) / n;
    measures.masses(k) = mass;
    measures.standard_errors(k) = std::sqrt(mass * (1.0 - mass) / n);
  }
  measures.hessian = Eigen::MatrixXd::Zero(num_atoms, num_atoms);
  const double scale = 1.0 / (2.0 * n * band_width);
  for (Eigen::Index k = 0; k < num_atoms; ++k) {
    for (Eigen::Index j = 0; j < num_atoms; ++j) {
      if (j == k) continue;
      const std::int64_t pair = band_counts[k * num_atoms + j] +
                                band_counts[j * num_atoms + k];
      measures.hessian(k, j) = -static_cast<double>(pair) * scale;
    }
    measures.hessian(k, k) = -measures.hessian.row(k).sum();
  }
  return measures;
}

}  // namespace fmg
