// The SIMD lane engine against the scalar per-sample path, and its
// vectorisable maths against the C library.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "host/driver.hpp"
#include "host/errors.hpp"
#include "kernels/cpu/lane_math.hpp"
#include "kernels/cpu/lanes.hpp"

namespace fmg {
namespace {

struct Arrays {
  std::vector<double> endpoints;
  std::vector<std::int32_t> labels;
  FlowTally tally;
};

Arrays run(const Mixture& mixture, FlowRunOptions options, bool simd) {
  options.cpu_simd = simd;
  Arrays out;
  FlowRunIo io;
  io.endpoints = [&out](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const double*>(data);
    out.endpoints.insert(out.endpoints.end(), p, p + bytes / sizeof(double));
  };
  io.labels = [&out](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const std::int32_t*>(data);
    out.labels.insert(out.labels.end(), p, p + bytes / sizeof(std::int32_t));
  };
  out.tally = run_flow(mixture, options, io).tally;
  return out;
}

Mixture mixture_of_dimension(int d) {
  Mixture mixture;
  mixture.dim = d;
  for (int k = 0; k < 11; ++k) {
    for (int j = 0; j < d; ++j) mixture.atoms.push_back(2.5 * std::cos(1.3 * k + 0.7 * j));
    mixture.weights.push_back(k == 4 ? 0.0 : 0.1);
  }
  return mixture;
}

/// How two runs of the same samples differ.
struct Difference {
  std::size_t label_mismatches = 0;
  double worst_endpoint = 0;  ///< Largest coordinate difference where labels agree.
};

Difference compare(const Arrays& one, const Arrays& other, int d) {
  Difference difference;
  for (std::size_t i = 0; i < one.labels.size(); ++i) {
    difference.label_mismatches += one.labels[i] != other.labels[i];
  }
  for (std::size_t i = 0; i < one.endpoints.size(); ++i) {
    if (one.labels[i / d] == other.labels[i / d]) {
      difference.worst_endpoint = std::max(difference.worst_endpoint,
                                           std::fabs(one.endpoints[i] - other.endpoints[i]));
    }
  }
  return difference;
}

TEST(LaneEngine, MatchesScalarPath) {
  for (int d : {1, 2, 3, 4, 6, 8}) {
    for (Method method : {Method::euler, Method::rk4, Method::dopri5}) {
      for (ScheduleKind kind : {ScheduleKind::linear, ScheduleKind::cosine}) {
        SCOPED_TRACE(testing::Message() << "d " << d << " method "
                                        << static_cast<int>(method) << " schedule "
                                        << static_cast<int>(kind));
        FlowRunOptions options;
        options.backend = BackendChoice::cpu;
        options.num_samples = 1003;
        options.method = method;
        options.schedule = kind;
        options.steps = 40;
        options.rtol = 1e-9;
        options.atol = 1e-11;
        options.progress = false;
        const Mixture mixture = d == 2 ? builtin_example() : mixture_of_dimension(d);
        const Arrays scalar = run(mixture, options, false);
        const Arrays lanes = run(mixture, options, true);
        ASSERT_EQ(scalar.endpoints.size(), lanes.endpoints.size());
        const Difference difference = compare(scalar, lanes, d);
        EXPECT_LE(difference.label_mismatches, 1u);
        EXPECT_LT(difference.worst_endpoint, method == Method::dopri5 ? 1e-6 : 1e-9);
        if (method != Method::dopri5) {
          EXPECT_EQ(scalar.tally.evaluations_sum, lanes.tally.evaluations_sum);
        }
        EXPECT_EQ(lanes.tally.samples(), options.num_samples);
      }
    }
  }
}

/// Returns a mixture of `atoms` atoms in dimension d, the second of weight
/// zero when there are two or more.
Mixture mixture_with_atoms(int atoms, int d) {
  Mixture mixture;
  mixture.dim = d;
  for (int k = 0; k < atoms; ++k) {
    for (int j = 0; j < d; ++j) mixture.atoms.push_back(2.0 * std::cos(0.9 * k + 1.1 * j));
    mixture.weights.push_back(k == 1 ? 0.0 : 1.0 / (atoms > 1 ? atoms - 1 : 1));
  }
  return mixture;
}

FlowRunOptions small_run(Method method, ScheduleKind kind) {
  FlowRunOptions options;
  options.backend = BackendChoice::cpu;
  options.num_samples = 517;
  options.method = method;
  options.schedule = kind;
  options.steps = 30;
  options.rtol = 1e-9;
  options.atol = 1e-11;
  options.progress = false;
  return options;
}

// The engine has a specialised velocity for each atom count up to four,
// which evaluates K - 1 exponentials. Each must agree with the scalar path.
TEST(LaneEngine, EveryAtomCountMatchesScalarPath) {
  for (int atoms : {1, 2, 3, 4, 5}) {
    for (int d : {1, 2, 3, 5, 8}) {
      for (ScheduleKind kind : {ScheduleKind::linear, ScheduleKind::variance_preserving,
                                ScheduleKind::cosine}) {
        SCOPED_TRACE(testing::Message() << "K " << atoms << " d " << d << " schedule "
                                        << static_cast<int>(kind));
        const FlowRunOptions options = small_run(Method::dopri5, kind);
        const Mixture mixture = mixture_with_atoms(atoms, d);
        const Arrays scalar = run(mixture, options, false);
        const Arrays lanes = run(mixture, options, true);
        ASSERT_EQ(scalar.labels.size(), lanes.labels.size());
        const Difference difference = compare(scalar, lanes, d);
        EXPECT_LE(difference.label_mismatches, 1u);
        EXPECT_LT(difference.worst_endpoint, 1e-6);
        if (atoms > 1) {
          EXPECT_EQ(lanes.tally.label_counts[1], 0u);
        }
      }
    }
  }
}

// Atoms near the largest allowed coordinates, integrated close to t = 1,
// give log terms near the overflow of the squared distance; the lanes must
// still agree with the scalar path and stay finite.
TEST(LaneEngine, HugeAtomsMatchScalarPath) {
  for (int atoms : {2, 3, 4, 6}) {
    SCOPED_TRACE(atoms);
    Mixture mixture;
    mixture.dim = 2;
    for (int k = 0; k < atoms; ++k) {
      mixture.atoms.push_back(k % 2 == 0 ? 1e150 : -1e150);
      mixture.atoms.push_back(k * 1e149);
      mixture.weights.push_back(1.0 / atoms);
    }
    FlowRunOptions options = small_run(Method::rk4, ScheduleKind::linear);
    options.eps = 1e-9;
    const Arrays scalar = run(mixture, options, false);
    const Arrays lanes = run(mixture, options, true);
    EXPECT_EQ(scalar.labels, lanes.labels);
    EXPECT_EQ(scalar.tally.status_counts, lanes.tally.status_counts);
    bool all_finite = true;
    for (double value : lanes.endpoints) all_finite = all_finite && std::isfinite(value);
    EXPECT_TRUE(all_finite);
  }
}

/// Endpoints of `count` Philox samples run by the lane engine on one
/// instruction set, all in one job.
template <class T>
std::vector<T> endpoints_on(const std::string& isa, const Mixture& mixture,
                            const FlowRunOptions& options, std::size_t count) {
  const HostMixture<T> host = make_host_mixture<T>(mixture);
  std::vector<T> endpoints(count * static_cast<std::size_t>(mixture.dim));
  FlowChunk<T> chunk;
  chunk.count = count;
  chunk.endpoints = endpoints.data();
  const lanes::LaneJob<T> job{host.view(), make_flow_problem<T>(options, mixture), &chunk, 0, count};
  FlowTally tally(mixture.num_atoms());
  lanes::run_lanes_on(isa, job, tally);
  return endpoints;
}

// The header promises results that do not depend on the instruction set:
// every one this processor supports must give the same bits.
TEST(LaneEngine, EveryInstructionSetGivesIdenticalBits) {
  const std::vector<std::string> sets = lanes::supported_lane_instruction_sets();
  ASSERT_FALSE(sets.empty());
  for (Method method : {Method::rk4, Method::dopri5}) {
    for (ScheduleKind kind : {ScheduleKind::linear, ScheduleKind::cosine}) {
      for (int atoms : {3, 6}) {
        for (int d : {2, 7}) {
          SCOPED_TRACE(testing::Message() << "method " << static_cast<int>(method)
                                          << " schedule " << static_cast<int>(kind)
                                          << " K " << atoms << " d " << d);
          const FlowRunOptions options = small_run(method, kind);
          const Mixture mixture = mixture_with_atoms(atoms, d);
          const auto reference = endpoints_on<double>(sets.front(), mixture, options, 203);
          const auto reference_float = endpoints_on<float>(sets.front(), mixture, options, 203);
          for (const std::string& isa : sets) {
            SCOPED_TRACE(isa);
            EXPECT_EQ(endpoints_on<double>(isa, mixture, options, 203), reference);
            EXPECT_EQ(endpoints_on<float>(isa, mixture, options, 203), reference_float);
          }
        }
      }
    }
  }
}

TEST(LaneEngine, UnsupportedInstructionSetIsRejected) {
  const Mixture mixture = builtin_example();
  const FlowRunOptions options = small_run(Method::rk4, ScheduleKind::linear);
  EXPECT_THROW(endpoints_on<double>("sse9", mixture, options, 8), InvalidArgument);
}

TEST(LaneMath, ExpMatchesLibrary) {
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    const double x = -700.0 + 1409.0 * i / 200000.0;
    worst = std::max(worst, std::fabs(lanes::exp(x) / std::exp(x) - 1.0));
  }
  EXPECT_LT(worst, 1e-15);
  EXPECT_EQ(lanes::exp(-800.0), 0.0);
  EXPECT_EQ(lanes::exp(-HUGE_VAL), 0.0);
  EXPECT_EQ(lanes::exp(0.0), 1.0);
}

TEST(LaneMath, FloatExpMatchesLibrary) {
  double worst = 0;
  for (int i = 0; i <= 100000; ++i) {
    const float x = -80.0f + 160.0f * i / 100000.0f;
    worst = std::max(worst, std::fabs(static_cast<double>(lanes::exp(x)) /
                                          std::exp(static_cast<double>(x)) - 1.0));
  }
  EXPECT_LT(worst, 1e-6);
  EXPECT_EQ(lanes::exp(-100.0f), 0.0f);
}

TEST(LaneMath, SinMatchesLibrary) {
  double worst = 0, worst_float = 0;
  for (int i = 0; i <= 100000; ++i) {
    const double x = 1.5707963267948966 * i / 100000.0;
    worst = std::max(worst, std::fabs(lanes::sin_quadrant(x) - std::sin(x)));
    worst_float = std::max(worst_float, std::fabs(static_cast<double>(lanes::sin_quadrant(
                                                      static_cast<float>(x))) -
                                                  std::sin(static_cast<double>(static_cast<float>(x)))));
  }
  EXPECT_LT(worst, 3e-16);
  EXPECT_LT(worst_float, 3e-7);
}

TEST(LaneMath, PowMinusFifthIsAccurateEnough) {
  for (double x : {1e-20, 1e-5, 0.3, 1.0, 7.0, 1e8}) {
    SCOPED_TRACE(x);
    EXPECT_NEAR(lanes::pow_minus_fifth(x) / std::pow(x, -0.2), 1.0, 1e-8);
  }
}

}  // namespace
}  // namespace fmg
