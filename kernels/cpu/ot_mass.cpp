// OpenMP counts of Laguerre cells and facet bands over base samples.
#include "kernels/ot_mass.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

namespace fmg {
namespace cpu {
namespace {

// Band counts are kept per thread up to this many entries (8 MiB of
// counters); beyond it they go straight to the shared array atomically.
constexpr std::int64_t max_private_band_entries = std::int64_t(1) << 20;

// Counts samples [begin, end) into the given arrays, with the point held in
// `x`, which has the mixture's dimension.
template <class Vec>
void count_range(const MixtureView<double>& mix, const double* psi,
                 std::uint64_t seed, std::uint64_t first_index,
                 std::int64_t begin, std::int64_t end, double band_width,
                 Vec& x, std::int64_t* cells, std::int64_t* bands,
                 bool atomic_bands) {
  const std::int64_t num_atoms = mix.num_atoms;
  for (std::int64_t i = begin; i < end; ++i) {
    philox_base_sample(seed, first_index + static_cast<std::uint64_t>(i), x);
    const LaguerreRank<double> rank = rank_laguerre_costs(mix, psi, x);
    if (rank.best < 0) continue;
    ++cells[rank.best];
    if (rank.second < 0 || !(rank.gap < band_width)) continue;
    std::int64_t& band = bands[rank.best * num_atoms + rank.second];
    if (atomic_bands) {
#pragma omp atomic
      ++band;
    } else {
      ++band;
    }
  }
}

template <int D>
void count_with_local_vec(const MixtureView<double>& mix, const double* psi,
                          std::uint64_t seed, std::uint64_t first_index,
                          std::int64_t begin, std::int64_t end,
                          double band_width, std::int64_t* cells,
                          std::int64_t* bands, bool atomic_bands) {
  LocalVec<double, D> x;
  count_range(mix, psi, seed, first_index, begin, end, band_width, x, cells,
              bands, atomic_bands);
}

void count_chunk(const MixtureView<double>& mix, const double* psi,
                 std::uint64_t seed, std::uint64_t first_index,
                 std::int64_t begin, std::int64_t end, double band_width,
                 std::vector<double>& scratch, std::int64_t* cells,
                 std::int64_t* bands, bool atomic_bands) {
  switch (mix.dim) {
    case 1:
      count_with_local_vec<1>(mix, psi, seed, first_index, begin, end,
                              band_width, cells, bands, atomic_bands);
      return;
    case 2:
      count_with_local_vec<2>(mix, psi, seed, first_index, begin, end,
                              band_width, cells, bands, atomic_bands);
      return;
    case 3:
      count_with_local_vec<3>(mix, psi, seed, first_index, begin, end,
                              band_width, cells, bands, atomic_bands);
      return;
    default: {
      StridedVec<double> x{scratch.data(), mix.dim, 1};
      count_range(mix, psi, seed, first_index, begin, end, band_width, x,
                  cells, bands, atomic_bands);
    }
  }
}

}  // namespace

void count_laguerre_cells(const MixtureView<double>& mix, const double* psi,
                          std::uint64_t seed, std::uint64_t first_index,
                          std::int64_t num_samples, double band_width,
                          std::int64_t* cell_counts,
                          std::int64_t* band_counts) {
  const std::int64_t num_atoms = mix.num_atoms;
  const std::int64_t band_entries = num_atoms * num_atoms;
  std::fill(cell_counts, cell_counts + num_atoms, std::int64_t(0));
  std::fill(band_counts, band_counts + band_entries, std::int64_t(0));
  if (num_samples <= 0 || num_atoms <= 0) return;

  const bool private_bands = band_entries <= max_private_band_entries;
  // Fixed chunks keep the work per task coarse; the counts themselves are
  // sums of integers and do not depend on how samples are split.
  const std::int64_t chunk = 4096;
  const std::int64_t num_chunks = (num_samples + chunk - 1) / chunk;

#pragma omp parallel
  {
    std::vector<std::int64_t> cells(static_cast<std::size_t>(num_atoms), 0);
    std::vector<std::int64_t> bands(
        private_bands ? static_cast<std::size_t>(band_entries) : 0, 0);
    std::int64_t* band_target = private_bands ? bands.data() : band_counts;
    std::vector<double> scratch(static_cast<std::size_t>(mix.dim));

#pragma omp for schedule(dynamic, 16)
    for (std::int64_t c = 0; c < num_chunks; ++c) {
      const std::int64_t begin = c * chunk;
      const std::int64_t end = std::min(num_samples, begin + chunk);
      count_chunk(mix, psi, seed, first_index, begin, end, band_width,
                  scratch, cells.data(), band_target, !private_bands);
    }

#pragma omp critical(fmg_ot_mass_merge)
    {
      for (std::int64_t k = 0; k < num_atoms; ++k) cell_counts[k] += cells[k];
      if (private_bands) {
        for (std::int64_t e = 0; e < band_entries; ++e) {
          band_counts[e] += bands[e];
        }
      }
    }
  }
}

}  // namespace cpu
}  // namespace fmg
