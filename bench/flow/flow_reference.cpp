// fmg_flow_reference: integrates given starting points with fmg's
// per-sample Dormand-Prince at rtol 1e-13 and atol 1e-14 in double, the
// reference endpoints of the flow benchmarks, and writes them as .npy.
// Prints a JSON record with the wall time and the failure count.
//
//   fmg_flow_reference --starts x0.npy --out reference.npy
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/flow/endpoint_accuracy.hpp"
#include "host/errors.hpp"
#include "host/format.hpp"
#include "host/io/mixture_io.hpp"
#include "host/io/npy.hpp"
#include "host/names.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "Writes the reference endpoints of the flow benchmarks: fmg's "
      "per-sample Dormand-Prince at rtol 1e-13, atol 1e-14, in double."};
  std::string starts_path, out_path, mixture_path, schedule = "linear";
  double eps = 1e-3;
  int threads = 0;
  app.add_option("--starts", starts_path, "(N, d) .npy starting points")
      ->required();
  app.add_option("--out", out_path, "(N, d) float64 .npy reference endpoints")
      ->required();
  app.add_option("--mixture", mixture_path,
                 "mixture JSON file (default: the built-in example)");
  app.add_option("--schedule", schedule,
                 "linear, variance-preserving (vp) or cosine")
      ->capture_default_str();
  app.add_option("--eps", eps, "integrate to t = 1 - eps")
      ->capture_default_str();
  app.add_option("--threads", threads, "OpenMP threads (0: default)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    const fmg::Mixture mixture = mixture_path.empty()
                                     ? fmg::builtin_example()
                                     : fmg::read_mixture_file(mixture_path);
    fmg::validate_mixture(mixture, fmg::Precision::float64);
    const fmg::ScheduleKind kind = fmg::parse_schedule(schedule);
    if (!(eps > 0.0 && eps < 1.0)) {
      throw fmg::InvalidArgument("invalid --eps " + fmg::format_number(eps) +
                                 ": it must lie in (0, 1)");
    }
    const fmg::Matrix<double> starts =
        fmg::read_npy_matrix<double>(starts_path, mixture.dim);

    const fmg::bench::ReferenceEndpoints reference =
        fmg::bench::compute_reference_endpoints(mixture, kind, eps,
                                                starts.values, threads);
    fmg::write_npy_file<double>(out_path, {starts.rows, starts.cols},
                                reference.endpoints.data());

    const nlohmann::json record = {
        {"method", "fmg::integrate_sample dopri5, double"},
        {"rtol", fmg::bench::reference_rtol},
        {"atol", fmg::bench::reference_atol},
        {"samples", starts.rows},
        {"failures", reference.failures},
        {"wall_seconds", reference.wall_seconds}};
    std::cout << record.dump() << '\n';
  } catch (const fmg::InvalidArgument& error) {
    std::fprintf(stderr, "fmg_flow_reference: error: %s\n", error.what());
    return 2;
  } catch (const fmg::FileError& error) {
    std::fprintf(stderr, "fmg_flow_reference: error: %s\n", error.what());
    return 3;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "fmg_flow_reference: error: %s\n", error.what());
    return 1;
  }
  return 0;
}
