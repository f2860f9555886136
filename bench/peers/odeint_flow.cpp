// fmg_odeint_flow: a peer of `fmg sample` written as a Boost.Odeint user
// would write it. Each sample of the built-in three-atom example is
// integrated on its own, under the linear schedule, by a controlled
// runge_kutta_dopri5 stepper through integrate_adaptive, from t = 0 to
// t = 1 - eps, in an OpenMP loop over samples. Nothing of fmg is used but
// its .npy reader and writer.
//
//   fmg_odeint_flow --starts x0.npy --out end.npy --rtol 1e-8 --atol 1e-10
//
// Odeint's controlled stepper measures the error in the maximum norm, scaled
// by atol + rtol * (|x_j| + h |dx_j/dt|), where fmg's Dormand-Prince uses an
// RMS norm scaled by atol + rtol * max(|x_j|, |x_new_j|); equal tolerances
// therefore give slightly different step counts.
#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/numeric/odeint.hpp>
#include <boost/version.hpp>
#include <nlohmann/json.hpp>

#include "host/io/npy.hpp"

namespace {

namespace odeint = boost::numeric::odeint;
using State = std::array<double, 2>;

// The built-in example: atoms mu_k and log weights log w_k.
constexpr int num_atoms = 3;
const double atoms[num_atoms][2] = {{2.4, 0.0}, {-1.4, 2.0}, {-1.4, -2.0}};
const double log_weights[num_atoms] = {std::log(0.45), std::log(0.30),
                                       std::log(0.25)};

/// The flow's velocity under the linear schedule (a = 1 - t, b = t):
/// v = (m - x) / (1 - t), with the posterior mean m = sum_k gamma_k mu_k and
/// gamma = softmax_k(log w_k - |x - t mu_k|^2 / (2 (1 - t)^2)) computed with
/// a log-sum-exp. Counts its calls in `evaluations`.
struct LinearFlow {
  std::uint64_t* evaluations;

  void operator()(const State& x, State& dxdt, double t) const {
    *evaluations += 1;
    const double a = 1.0 - t;
    const double inv_two_a2 = 0.5 / (a * a);
    double logits[num_atoms];
    double largest = -INFINITY;
    for (int k = 0; k < num_atoms; ++k) {
      const double dx = x[0] - t * atoms[k][0];
      const double dy = x[1] - t * atoms[k][1];
      logits[k] = log_weights[k] - (dx * dx + dy * dy) * inv_two_a2;
      largest = std::max(largest, logits[k]);
    }
    double total = 0.0, mean_x = 0.0, mean_y = 0.0;
    for (int k = 0; k < num_atoms; ++k) {
      const double e = std::exp(logits[k] - largest);
      total += e;
      mean_x += e * atoms[k][0];
      mean_y += e * atoms[k][1];
    }
    dxdt[0] = (mean_x / total - x[0]) / a;
    dxdt[1] = (mean_y / total - x[1]) / a;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Integrates the flow of the built-in example (linear schedule) for "
      "each starting point with Boost.Odeint's controlled Dormand-Prince and "
      "prints a JSON record."};
  std::string starts_path, out_path;
  double rtol = 1e-8, atol = 1e-10, eps = 1e-3, initial_step = 1e-3;
  int threads = 0;
  app.add_option("--starts", starts_path, "(N, 2) .npy starting points")
      ->required();
  app.add_option("--out", out_path, "(N, 2) float64 .npy endpoints");
  app.add_option("--rtol", rtol, "relative tolerance")->capture_default_str();
  app.add_option("--atol", atol, "absolute tolerance")->capture_default_str();
  app.add_option("--eps", eps, "integrate to t = 1 - eps")
      ->capture_default_str();
  app.add_option("--initial-step", initial_step,
                 "first trial step of integrate_adaptive")
      ->capture_default_str();
  app.add_option("--threads", threads, "OpenMP threads (0: default)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const fmg::Matrix<double> starts =
        fmg::read_npy_matrix<double>(starts_path, 2);
    const auto count = static_cast<std::ptrdiff_t>(starts.rows);
    const double t_end = 1.0 - eps;
    const int team = threads > 0 ? threads : omp_get_max_threads();
    std::vector<double> endpoints(starts.values.size());
    std::uint64_t evaluations = 0, accepted = 0;

    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(team) reduction(+ : evaluations, accepted)
    {
      std::uint64_t local_evaluations = 0;
      const LinearFlow flow{&local_evaluations};

#pragma omp for schedule(dynamic, 64)
      for (std::ptrdiff_t i = 0; i < count; ++i) {
        State x = {starts.values[2 * i], starts.values[2 * i + 1]};
        // A fresh stepper per sample: the FSAL stepper keeps the last
        // derivative of the previous sample otherwise.
        auto stepper = odeint::make_controlled(
            atol, rtol, odeint::runge_kutta_dopri5<State>());
        accepted += odeint::integrate_adaptive(stepper, flow, x, 0.0, t_end,
                                               initial_step);
        endpoints[2 * i] = x[0];
        endpoints[2 * i + 1] = x[1];
      }
      evaluations += local_evaluations;
    }
    const double wall = std::chrono::duration<double>(
                            std::chrono::steady_clock::now() - start)
                            .count();

    if (!out_path.empty()) {
      fmg::write_npy_file<double>(out_path, {starts.rows, 2},
                                  endpoints.data());
    }
    const nlohmann::json record = {
        {"tool", "boost odeint runge_kutta_dopri5, controlled, per sample"},
        {"boost_version", BOOST_LIB_VERSION},
        {"rtol", rtol},
        {"atol", atol},
        {"eps", eps},
        {"n", starts.rows},
        {"threads", team},
        {"wall_seconds", wall},
        {"samples_per_second", static_cast<double>(starts.rows) / wall},
        {"velocity_evaluations", evaluations},
        {"accepted_steps", accepted}};
    std::cout << record.dump() << '\n';
  } catch (const std::exception& error) {
    std::fprintf(stderr, "fmg_odeint_flow: error: %s\n", error.what());
    return 1;
  }
  return 0;
}
