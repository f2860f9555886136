// fmg field: log density, log responsibilities and velocity of the flow at
// given points and times.
#include <cmath>
#include <memory>
#include <sstream>

#include "host/cli/common.hpp"
#include "host/driver.hpp"
#include "host/errors.hpp"
#include "host/names.hpp"
#include "kernels/mixture.hpp"
#include "kernels/vec.hpp"

namespace fmg::cli {
namespace {

struct FieldArguments {
  std::string mixture_path;
  std::string schedule = "linear";
  std::string points_path;
  std::vector<std::string> times;
  std::string precision = "double";
  std::string json_path;
  std::string velocity_path, log_density_path, responsibilities_path;
};

/// Values of the field at n points and T times, in row-major (T, n, ...).
struct FieldValues {
  std::vector<double> log_density;       // T x n
  std::vector<double> log_gamma;         // T x n x K
  std::vector<double> velocity;          // T x n x d
};

template <class T>
FieldValues evaluate(const Mixture& mixture, ScheduleKind kind,
                     const std::vector<double>& points, std::size_t n,
                     const std::vector<double>& times) {
  const int d = mixture.dim;
  const int k_count = mixture.num_atoms();
  const HostMixture<T> host = make_host_mixture<T>(mixture);
  const MixtureView<T> mix = host.view();

  FieldValues values;
  values.log_density.resize(times.size() * n);
  values.log_gamma.resize(times.size() * n * k_count);
  values.velocity.resize(times.size() * n * d);
  for (std::size_t ti = 0; ti < times.size(); ++ti) {
    const T t = static_cast<T>(times[ti]);
#pragma omp parallel
    {
      std::vector<T> x(d), v(d), scratch(d), gamma(k_count);
#pragma omp for
      for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) {
        for (int j = 0; j < d; ++j) x[j] = static_cast<T>(points[i * d + j]);
        StridedVec<T> xv{x.data(), d, 1}, vv{v.data(), d, 1},
            sv{scratch.data(), d, 1};
        const std::size_t row = ti * n + static_cast<std::size_t>(i);
        values.log_density[row] = log_density(mix, kind, t, xv, sv);
        velocity(mix, kind, t, xv, vv);
        log_responsibilities(mix, kind, t, xv, gamma.data());
        for (int j = 0; j < d; ++j) values.velocity[row * d + j] = v[j];
        for (int k = 0; k < k_count; ++k) {
          values.log_gamma[row * k_count + k] = gamma[k];
        }
      }
    }
  }
  return values;
}

/// JSON cannot hold -inf; a zero responsibility's log is written as null.
nlohmann::json finite_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

void run_field(const FieldArguments& args) {
  const Mixture mixture = load_mixture(args.mixture_path);
  const ScheduleKind kind = parse_schedule(args.schedule);
  const Precision precision = parse_precision(args.precision);
  validate_mixture(mixture, precision);
  if (args.points_path.empty()) {
    throw InvalidArgument("--points FILE.npy is required: an (n, d) array of "
                          "points");
  }
  const std::vector<double> times = parse_times(args.times);
  const Matrix<double> points = read_npy_matrix<double>(args.points_path, mixture.dim);
  check_point_magnitudes(points.values, points.cols, args.points_path, precision);

  OutputSet outputs;
  if (!args.mixture_path.empty()) outputs.add_input(args.mixture_path, "--mixture");
  outputs.add_input(args.points_path, "--points");
  AtomicFile* json_file = args.json_path.empty() || args.json_path == "-"
                              ? nullptr
                              : &outputs.add(args.json_path, "--json");
  AtomicFile* velocity_file =
      args.velocity_path.empty() ? nullptr : &outputs.add(args.velocity_path, "--velocity-out");
  AtomicFile* density_file = args.log_density_path.empty()
                                 ? nullptr
                                 : &outputs.add(args.log_density_path, "--log-density-out");
  AtomicFile* gamma_file = args.responsibilities_path.empty()
                               ? nullptr
                               : &outputs.add(args.responsibilities_path, "--responsibilities-out");

  const std::size_t n = points.rows;
  const std::size_t d = static_cast<std::size_t>(mixture.dim);
  const std::size_t k_count = static_cast<std::size_t>(mixture.num_atoms());
  const FieldValues values =
      precision == Precision::float32
          ? evaluate<float>(mixture, kind, points.values, n, times)
          : evaluate<double>(mixture, kind, points.values, n, times);

  const std::size_t t_count = times.size();
  if (velocity_file != nullptr) {
    write_npy(velocity_file->stream(), NpyType::float64, {t_count, n, d},
              values.velocity.data());
  }
  if (density_file != nullptr) {
    write_npy(density_file->stream(), NpyType::float64, {t_count, n},
              values.log_density.data());
  }
  if (gamma_file != nullptr) {
    write_npy(gamma_file->stream(), NpyType::float64, {t_count, n, k_count},
              values.log_gamma.data());
  }

  const bool arrays_only = json_file == nullptr && args.json_path.empty() &&
                           (velocity_file || density_file || gamma_file);
  if (!arrays_only) {
    nlohmann::json summary;
    summary["fmg_version"] = FMG_VERSION;
    summary["command"] = "field";
    summary["schedule"] = schedule_name(kind);
    summary["precision"] = precision_name(precision);
    summary["times"] = times;
    summary["points"] = n;
    nlohmann::json per_time = nlohmann::json::array();
    for (std::size_t ti = 0; ti < t_count; ++ti) {
      nlohmann::json entry;
      entry["t"] = times[ti];
      nlohmann::json density = nlohmann::json::array();
      nlohmann::json gamma = nlohmann::json::array();
      nlohmann::json velocity = nlohmann::json::array();
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t row = ti * n + i;
        density.push_back(values.log_density[row]);
        nlohmann::json g = nlohmann::json::array();
        for (std::size_t k = 0; k < k_count; ++k) {
          g.push_back(finite_or_null(values.log_gamma[row * k_count + k]));
        }
        gamma.push_back(g);
        velocity.push_back(std::vector<double>(
            values.velocity.begin() + row * d,
            values.velocity.begin() + (row + 1) * d));
      }
      entry["log_density"] = density;
      entry["log_responsibilities"] = gamma;
      entry["velocity"] = velocity;
      per_time.push_back(entry);
    }
    summary["values"] = per_time;
    emit_json(summary, json_file);
  }
  outputs.commit_all();
}

}  // namespace

void add_field_command(CLI::App& app) {
  auto args = std::make_shared<FieldArguments>();
  CLI::App* cmd = app.add_subcommand(
      "field",
      "Evaluate log rho_t, the log responsibilities and the velocity of the "
      "flow at given points and times.");
  cmd->add_option("--mixture", args->mixture_path,
                  "Mixture JSON file; default: the built-in example");
  cmd->add_option("--schedule", args->schedule,
                  "linear, variance-preserving (vp) or cosine")
      ->capture_default_str();
  cmd->add_option("--points", args->points_path,
                  "Points as an (n, d) float64 or float32 .npy file");
  cmd->add_option("--times", args->times, "Times in [0, 1): a list (0.1,0.9) or START:STOP:COUNT");
  cmd->add_option("--precision", args->precision, "double or float")
      ->capture_default_str();
  cmd->add_option("--json", args->json_path,
                  "Write the values as JSON to this file ('-' for stdout, the "
                  "default when no .npy output is given)");
  cmd->add_option("--velocity-out", args->velocity_path,
                  "Write velocities as a (times, n, d) float64 .npy file");
  cmd->add_option("--log-density-out", args->log_density_path,
                  "Write log rho_t as a (times, n) float64 .npy file");
  cmd->add_option("--responsibilities-out", args->responsibilities_path,
                  "Write log responsibilities as a (times, n, K) float64 .npy "
                  "file (-inf for atoms of zero weight)");
  cmd->callback([args, cmd]() {
    reject_empty_values(*cmd);
    run_field(*args);
  });
}

}  // namespace fmg::cli
