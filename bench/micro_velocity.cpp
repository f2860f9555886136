// Micro benchmarks of the per-sample maths on the CPU: one velocity
// evaluation, one step of each method, one whole sample and one base
// sample, each reported as items per second.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "kernels/flow.hpp"
#include "kernels/philox_normal.hpp"
#include "kernels/vec.hpp"

namespace {

using fmg::LocalVec;
using fmg::MixtureView;
using fmg::ScheduleKind;

struct Builtin {
  std::vector<double> atoms{2.4, 0.0, -1.4, 2.0, -1.4, -2.0};
  std::vector<double> log_w{std::log(0.45), std::log(0.30), std::log(0.25)};
  MixtureView<double> view() const { return {atoms.data(), log_w.data(), 3, 2}; }
};

void velocity_builtin(benchmark::State& state) {
  const Builtin mix;
  const auto kind = static_cast<ScheduleKind>(state.range(0));
  LocalVec<double, 2> x{{0.3, -0.2}}, v{};
  double t = 0.5;
  for (auto _ : state) {
    fmg::velocity(mix.view(), kind, t, x, v);
    benchmark::DoNotOptimize(v);
    x[0] += 1e-9;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(velocity_builtin)->Arg(0)->Arg(1)->Arg(2)->ArgName("schedule");

void velocity_high_dimension(benchmark::State& state) {
  const int d = static_cast<int>(state.range(0));
  const int k_count = static_cast<int>(state.range(1));
  std::vector<double> atoms(static_cast<std::size_t>(d) * k_count);
  for (std::size_t i = 0; i < atoms.size(); ++i) atoms[i] = std::sin(0.37 * i);
  std::vector<double> log_w(k_count, -std::log(static_cast<double>(k_count)));
  const MixtureView<double> view{atoms.data(), log_w.data(), k_count, d};
  std::vector<double> x(d, 0.1), v(d);
  fmg::StridedVec<double> xv{x.data(), d, 1}, vv{v.data(), d, 1};
  for (auto _ : state) {
    fmg::velocity(view, ScheduleKind::linear, 0.5, xv, vv);
    benchmark::DoNotOptimize(v.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["atom_coordinates"] = static_cast<double>(d) * k_count;
}
BENCHMARK(velocity_high_dimension)->Args({16, 16})->Args({128, 64})->Args({1024, 256});

void sample_integration(benchmark::State& state) {
  const Builtin mix;
  fmg::FlowProblem<double> problem;
  problem.method = static_cast<fmg::Method>(state.range(0));
  problem.steps = 64;
  problem.control.rtol = 1e-8;
  problem.control.atol = 1e-10;
  std::uint64_t index = 0;
  std::uint64_t evaluations = 0;
  for (auto _ : state) {
    LocalVec<double, 2> x{};
    fmg::Workspace<LocalVec<double, 2>> ws{};
    fmg::philox_base_sample(1, index++, x);
    evaluations += fmg::integrate_sample(mix.view(), problem, x, ws).evaluations;
    benchmark::DoNotOptimize(x);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["evaluations_per_second"] =
      benchmark::Counter(static_cast<double>(evaluations), benchmark::Counter::kIsRate);
}
BENCHMARK(sample_integration)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->ArgName("method");

// One step of each method from a fresh state: Euler, Heun and RK4 take one
// fixed step; Dormand-Prince evaluates its first velocity and attempts one
// step of a given size (7 velocity evaluations).
void single_step(benchmark::State& state) {
  const Builtin mix;
  const fmg::FlowField<double> field{mix.view(), ScheduleKind::linear};
  const auto method = static_cast<fmg::Method>(state.range(0));
  fmg::StepControl<double> control;
  control.initial_step = 0.01;
  control.max_steps = 1;
  double x0 = 0.3;
  for (auto _ : state) {
    LocalVec<double, 2> x{{x0, -0.2}};
    fmg::Workspace<LocalVec<double, 2>> ws{};
    if (method == fmg::Method::dopri5) {
      fmg::integrate_dopri5(field, x, ws, 0.999, control);
    } else {
      fmg::integrate_fixed(method, field, x, ws, 0.999, 1);
    }
    benchmark::DoNotOptimize(x);
    x0 += 1e-12;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(single_step)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->ArgName("method");

void base_sample(benchmark::State& state) {
  std::uint64_t index = 0;
  for (auto _ : state) {
    LocalVec<double, 2> x{};
    fmg::philox_base_sample(20260617, index++, x);
    benchmark::DoNotOptimize(x);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(base_sample);

}  // namespace

BENCHMARK_MAIN();
