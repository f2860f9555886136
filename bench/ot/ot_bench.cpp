// Times fmg's semi-discrete OT solves on the three-atom example and prints
// one JSON record; --evaluate-psi instead prints the exact cell masses and
// residual of given potentials.
//
//   fmg_ot_bench [--samples N] [--seed S] [--repeat R] [--cuda]
//   fmg_ot_bench --evaluate-psi 0,-0.8065,-1.2405
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "host/errors.hpp"
#include "host/ot/laguerre2d.hpp"
#include "host/ot/semidiscrete.hpp"

namespace {

using fmg::PointMatrix;
using nlohmann::json;

PointMatrix example_atoms() {
  PointMatrix atoms(3, 2);
  atoms << 2.4, 0.0, -1.4, 2.0, -1.4, -2.0;
  return atoms;
}

Eigen::VectorXd example_weights() {
  Eigen::VectorXd weights(3);
  weights << 0.45, 0.30, 0.25;
  return weights;
}

// JSON has no infinities: -inf potentials (excluded atoms) become null.
json to_json(const Eigen::VectorXd& values) {
  json array = json::array();
  for (Eigen::Index k = 0; k < values.size(); ++k) {
    if (std::isfinite(values(k))) {
      array.push_back(values(k));
    } else {
      array.push_back(nullptr);
    }
  }
  return array;
}

Eigen::VectorXd parse_potentials(const std::string& text) {
  std::vector<double> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    std::size_t used = 0;
    double value = 0.0;
    try {
      value = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size()) {
      throw fmg::InvalidArgument("--evaluate-psi item '" + item +
                                 "' is not a number; expected a comma-"
                                 "separated list such as 0,-0.79,-1.18");
    }
    values.push_back(value);
  }
  return Eigen::Map<const Eigen::VectorXd>(values.data(),
                                           static_cast<Eigen::Index>(values.size()));
}

json evaluate_potentials(const Eigen::VectorXd& psi) {
  const PointMatrix atoms = example_atoms();
  const Eigen::VectorXd weights = example_weights();
  const fmg::CellMeasures measures = fmg::exact_cell_measures_2d(atoms, psi);
  const double residual = (measures.masses - weights).cwiseAbs().maxCoeff();
  return json{{"psi", to_json(psi)},
              {"exact_masses", to_json(measures.masses)},
              {"weights", to_json(weights)},
              {"exact_residual", residual}};
}

// Runs the solve `repeat` times and reports the fastest wall time with the
// last result. The solve is deterministic, so every run gives that result.
json time_solve(const fmg::SemiDiscreteOptions& options, int repeat) {
  const PointMatrix atoms = example_atoms();
  const Eigen::VectorXd weights = example_weights();
  double best_seconds = std::numeric_limits<double>::infinity();
  fmg::SemiDiscreteResult result;
  for (int r = 0; r < repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    result = fmg::solve_semidiscrete_ot(atoms, weights, options);
    const auto stop = std::chrono::steady_clock::now();
    best_seconds = std::min(
        best_seconds, std::chrono::duration<double>(stop - start).count());
  }
  json record{{"route", fmg::to_string(options.route)},
              {"time_s", best_seconds},
              {"repeat", repeat},
              {"status", fmg::to_string(result.status)},
              {"message", result.message},
              {"iterations", result.iterations},
              {"evaluations", result.evaluations},
              {"residual", result.residual},
              {"psi", to_json(result.psi)},
              {"masses", to_json(result.masses)}};
  if (result.exact_residual) record["exact_residual"] = *result.exact_residual;
  if (options.route != fmg::MassRoute::exact_2d) {
    record["samples"] = options.samples;
    record["seed"] = options.seed;
    record["samples_processed"] =
        static_cast<std::int64_t>(result.evaluations) * options.samples;
    record["psi_standard_errors"] = to_json(result.psi_standard_errors);
    record["residual_standard_error"] = result.residual_standard_error;
    if (result.holdout_residual) {
      record["holdout_residual"] = *result.holdout_residual;
    }
  }
  return record;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Times fmg's semi-discrete OT solves (exact 2-D and Monte Carlo) on the "
      "three-atom example mu = (2.4, 0), (-1.4, 2), (-1.4, -2), "
      "w = 0.45, 0.30, 0.25, and prints a JSON record"};
  std::string evaluate_psi;
  std::int64_t samples = 1'000'000;
  std::uint64_t seed = 20260617;
  int repeat = 5;
  double tolerance = 1e-12;
  bool with_cuda = false;
  app.add_option("--evaluate-psi", evaluate_psi,
                 "Print the exact masses and residual of these potentials "
                 "(comma-separated, one per atom) and exit; write "
                 "--evaluate-psi=LIST when the first value is negative");
  app.add_option("--samples", samples,
                 "Monte Carlo samples per evaluation")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "Seed of the Monte Carlo samples");
  app.add_option("--repeat", repeat, "Runs per solve; the fastest is reported")
      ->check(CLI::PositiveNumber);
  app.add_option("--tolerance", tolerance,
                 "Tolerance on max |m_k - w_k| of every solve");
  app.add_flag("--cuda", with_cuda, "Also time the CUDA Monte Carlo route");
  CLI11_PARSE(app, argc, argv);

  try {
    if (!evaluate_psi.empty()) {
      std::cout << evaluate_potentials(parse_potentials(evaluate_psi)).dump(2)
                << "\n";
      return 0;
    }
    fmg::SemiDiscreteOptions options;
    options.tolerance = tolerance;
    options.samples = samples;
    options.seed = seed;
    json record{{"benchmark", "fmg_ot_bench"},
                {"example", "three atoms, d = 2"}};
    options.route = fmg::MassRoute::exact_2d;
    record["exact_2d"] = time_solve(options, repeat);
    options.route = fmg::MassRoute::monte_carlo_cpu;
    record["monte_carlo_cpu"] = time_solve(options, 1);
    if (with_cuda) {
      options.route = fmg::MassRoute::monte_carlo_cuda;
      record["monte_carlo_cuda"] = time_solve(options, 1);
    }
    std::cout << record.dump(2) << "\n";
  } catch (const fmg::InvalidArgument& error) {
    std::cerr << "fmg_ot_bench: " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "fmg_ot_bench: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
