// The SIMD lane engine against the scalar per-sample path, and its
// vectorisable maths against the C library.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "host/driver.hpp"
#include "kernels/cpu/lane_math.hpp"

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

TEST(LaneEngine, MatchesScalarPath) {
  for (int d : {1, 2, 3}) {
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
        std::size_t label_mismatches = 0;
        for (std::size_t i = 0; i < scalar.labels.size(); ++i) {
          label_mismatches += scalar.labels[i] != lanes.labels[i];
        }
        EXPECT_LE(label_mismatches, 1u);
        double worst = 0;
        for (std::size_t i = 0; i < scalar.endpoints.size(); ++i) {
          if (scalar.labels[i / d] == lanes.labels[i / d]) {
            worst = std::max(worst, std::fabs(scalar.endpoints[i] - lanes.endpoints[i]));
          }
        }
        EXPECT_LT(worst, method == Method::dopri5 ? 1e-6 : 1e-9);
        if (method != Method::dopri5) {
          EXPECT_EQ(scalar.tally.evaluations_sum, lanes.tally.evaluations_sum);
        }
        EXPECT_EQ(lanes.tally.samples(), options.num_samples);
      }
    }
  }
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
