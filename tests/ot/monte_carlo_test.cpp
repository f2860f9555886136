#include "host/ot/monte_carlo.hpp"

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "host/errors.hpp"
#include "host/ot/laguerre2d.hpp"
#include "kernels/ot_mass.hpp"

namespace fmg {
namespace {

PointMatrix example_atoms() {
  PointMatrix atoms(3, 2);
  atoms << 2.4, 0.0, -1.4, 2.0, -1.4, -2.0;
  return atoms;
}

Eigen::VectorXd example_psi() {
  Eigen::VectorXd psi(3);
  psi << 0.0, -0.7875089379, -1.181375982;
  return psi;
}

double normal_cdf(double t) { return 0.5 * std::erfc(-t / std::sqrt(2.0)); }

struct Counts {
  std::vector<std::int64_t> cells;
  std::vector<std::int64_t> bands;
};

Counts count_on_cpu(const PointMatrix& atoms, const Eigen::VectorXd& psi,
                    std::int64_t samples, int threads) {
  const int previous = omp_get_max_threads();
  omp_set_num_threads(threads);
  const MixtureView<double> mix{atoms.data(), nullptr,
                                static_cast<int>(atoms.rows()),
                                static_cast<int>(atoms.cols())};
  Counts counts{std::vector<std::int64_t>(atoms.rows()),
                std::vector<std::int64_t>(atoms.rows() * atoms.rows())};
  cpu::count_laguerre_cells(mix, psi.data(), 11, 5, samples, 0.2,
                            counts.cells.data(), counts.bands.data());
  omp_set_num_threads(previous);
  return counts;
}

class MonteCarloCellMeasures : public ::testing::Test {
 protected:
  MonteCarloOptions options(std::int64_t samples) const {
    MonteCarloOptions o;
    o.samples = samples;
    o.seed = 20260617;
    return o;
  }
};

TEST_F(MonteCarloCellMeasures, CountsIndependentOfThreadCount) {
  for (const int dim : {2, 5}) {
    SCOPED_TRACE(::testing::Message() << "dimension " << dim);
    PointMatrix atoms = PointMatrix::Zero(3, dim);
    atoms.leftCols(2) = example_atoms();
    const Counts single_thread = count_on_cpu(atoms, example_psi(), 50'001, 1);
    const Counts two_threads = count_on_cpu(atoms, example_psi(), 50'001, 2);
    EXPECT_EQ(single_thread.cells, two_threads.cells);
    EXPECT_EQ(single_thread.bands, two_threads.bands);
    std::int64_t total = 0;
    for (const std::int64_t c : single_thread.cells) total += c;
    EXPECT_EQ(total, 50'001);
  }
}

TEST_F(MonteCarloCellMeasures, ZeroSamplesGiveZeroCounts) {
  const Counts counts = count_on_cpu(example_atoms(), example_psi(), 0, 2);
  for (const std::int64_t c : counts.cells) EXPECT_EQ(c, 0);
  for (const std::int64_t c : counts.bands) EXPECT_EQ(c, 0);
}

TEST_F(MonteCarloCellMeasures, MassesMatchExactWithinStandardError) {
  const PointMatrix atoms = example_atoms();
  const Eigen::VectorXd psi = example_psi();
  const CellMeasures sampled =
      monte_carlo_cell_measures(atoms, psi, options(200'000));
  const CellMeasures exact = exact_cell_measures_2d(atoms, psi);
  EXPECT_NEAR(sampled.masses.sum(), 1.0, 1e-12);
  for (Eigen::Index k = 0; k < 3; ++k) {
    SCOPED_TRACE(::testing::Message() << "cell " << k);
    const double expected_error = std::sqrt(
        exact.masses(k) * (1.0 - exact.masses(k)) / 200'000.0);
    EXPECT_NEAR(sampled.standard_errors(k), expected_error,
                0.05 * expected_error);
    EXPECT_NEAR(sampled.masses(k), exact.masses(k), 4.0 * expected_error);
  }
}

TEST_F(MonteCarloCellMeasures, HessianMatchesExact) {
  const PointMatrix atoms = example_atoms();
  const Eigen::VectorXd psi = example_psi();
  const CellMeasures sampled =
      monte_carlo_cell_measures(atoms, psi, options(400'000));
  const CellMeasures exact = exact_cell_measures_2d(atoms, psi);
  EXPECT_GT(sampled.band_width, 0.0);
  for (Eigen::Index k = 0; k < 3; ++k) {
    for (Eigen::Index j = 0; j < 3; ++j) {
      SCOPED_TRACE(::testing::Message() << "entry (" << k << ", " << j << ")");
      EXPECT_NEAR(sampled.hessian(k, j), exact.hessian(k, j),
                  0.05 * std::fabs(exact.hessian(k, j)));
    }
  }
}

TEST_F(MonteCarloCellMeasures, OneDimensionalMassesMatchNormalCdf) {
  PointMatrix atoms(2, 1);
  atoms << -1.0, 2.0;
  Eigen::VectorXd psi(2);
  psi << 0.0, 0.3;
  // c_0 <= c_1  <=>  3 x <= (4 - 1) / 2 - 0.3 + 0 = 1.2, so x <= 0.4.
  const double expected = normal_cdf(0.4);
  const CellMeasures sampled =
      monte_carlo_cell_measures(atoms, psi, options(100'000));
  EXPECT_NEAR(sampled.masses(0), expected, 4.0 * sampled.standard_errors(0));
}

TEST_F(MonteCarloCellMeasures, HighDimensionalMassesMatchNormalCdf) {
  // Two atoms in d = 7: the cells are half-spaces at distance 0.5 from the
  // origin along mu_1 - mu_0 = 2 e_3.
  PointMatrix atoms = PointMatrix::Zero(2, 7);
  atoms(0, 3) = -1.0;
  atoms(1, 3) = 1.0;
  Eigen::VectorXd psi(2);
  psi << 0.0, -1.0;
  const double expected = normal_cdf(0.5);
  const CellMeasures sampled =
      monte_carlo_cell_measures(atoms, psi, options(100'000));
  EXPECT_NEAR(sampled.masses(0), expected, 4.0 * sampled.standard_errors(0));
  // The facet integral is phi(0.5), divided by |mu_0 - mu_1| = 2.
  const double facet = std::exp(-0.125) / std::sqrt(2.0 * M_PI);
  EXPECT_NEAR(-sampled.hessian(0, 1), facet / 2.0, 0.05 * facet / 2.0);
}

TEST_F(MonteCarloCellMeasures, RejectsInvalidOptions) {
  MonteCarloOptions bad = options(0);
  try {
    monte_carlo_cell_measures(example_atoms(), example_psi(), bad);
    FAIL() << "samples = 0 was accepted";
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find("samples is 0"),
              std::string::npos)
        << error.what();
  }
  bad = options(10);
  bad.band_width = -1.0;
  EXPECT_THROW(monte_carlo_cell_measures(example_atoms(), example_psi(), bad),
               InvalidArgument);
}

TEST_F(MonteCarloCellMeasures, DefaultBandWidthShrinksWithSamples) {
  const PointMatrix atoms = example_atoms();
  const Eigen::VectorXd psi = example_psi();
  // Smallest distance between atoms is 4 (atoms 1 and 2).
  EXPECT_NEAR(default_band_width(atoms, psi, 100'000), 4.0 * 0.1, 1e-12);
  EXPECT_NEAR(default_band_width(atoms, psi, 3'200'000), 4.0 * 0.05, 1e-12);
}

#if defined(FMG_WITH_CUDA)
TEST_F(MonteCarloCellMeasures, CudaCountsMatchCpu) {
  for (const int dim : {2, 5}) {
    for (const std::int64_t samples : {0, 1, 37, 100'003}) {
      SCOPED_TRACE(::testing::Message()
                   << "dimension " << dim << ", samples " << samples);
      PointMatrix atoms = PointMatrix::Zero(3, dim);
      atoms.leftCols(2) = example_atoms();
      const MixtureView<double> mix{atoms.data(), nullptr, 3, dim};
      std::vector<std::int64_t> cells(3);
      std::vector<std::int64_t> bands(9);
      try {
        cuda::count_laguerre_cells(mix, example_psi().data(), 11, 5, samples,
                                   0.2, cells.data(), bands.data());
      } catch (const Unavailable& error) {
        GTEST_SKIP() << error.what();
      }
      const Counts reference = count_on_cpu(atoms, example_psi(), samples, 2);
      EXPECT_EQ(cells, reference.cells);
      EXPECT_EQ(bands, reference.bands);
    }
  }
}
#else
TEST_F(MonteCarloCellMeasures, CudaBackendUnavailableWithoutCuda) {
  MonteCarloOptions cuda_options = options(10);
  cuda_options.backend = MonteCarloBackend::cuda;
  EXPECT_THROW(
      monte_carlo_cell_measures(example_atoms(), example_psi(), cuda_options),
      Unavailable);
}
#endif

}  // namespace
}  // namespace fmg
