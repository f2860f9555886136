// End-to-end tests of the fmg program: each test runs the real binary with
// its command line and checks the exit status, the messages and the files
// it writes or must not leave behind.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "host/io/npy.hpp"
#include "tests/cli/cli_test_support.hpp"

namespace fmg::cli_test {
namespace {

using nlohmann::json;
using testing::HasSubstr;
using testing::IsEmpty;
using testing::Not;

// The built-in example: atoms (2.4, 0), (-1.4, 2), (-1.4, -2) with weights
// 0.45, 0.30, 0.25 in R^2.
constexpr int kDim = 2;
const std::vector<double> kAtoms = {2.4, 0.0, -1.4, 2.0, -1.4, -2.0};
const std::vector<double> kWeights = {0.45, 0.30, 0.25};
const std::vector<std::string> kScheduleNames = {"linear", "variance-preserving",
                                                 "cosine"};
constexpr double kPi = 3.14159265358979323846;

/// m = sum_k w_k mu_k, the mean of the built-in example.
std::vector<double> mixture_mean() {
  std::vector<double> mean(kDim, 0.0);
  for (std::size_t k = 0; k < kWeights.size(); ++k) {
    for (int j = 0; j < kDim; ++j) mean[j] += kWeights[k] * kAtoms[k * kDim + j];
  }
  return mean;
}

std::string describe_result(const CommandResult& result) {
  return "exit status " + std::to_string(result.exit_status) + "\nstdout:\n" +
         result.standard_output + "\nstderr:\n" + result.standard_error;
}

// ---------------------------------------------------------------------------
// Rejected input: exit status, message, and no output left behind.
// ---------------------------------------------------------------------------

/// One invalid command line. In `arguments`, a leading "IN/" stands for the
/// directory of the input files and "OUT/" for the directory of the outputs.
struct RejectionCase {
  std::string name;
  std::vector<std::string> arguments;
  /// Input files written before the run: name in IN/ and contents.
  std::vector<std::pair<std::string, std::string>> inputs;
  int exit_status = 2;
  /// Each entry lists alternative texts, one of which stderr must contain.
  std::vector<std::vector<std::string>> message_parts;
  /// Texts that stderr must not contain.
  std::vector<std::string> absent_parts = {};
  /// Appends the standard output options of the subcommand, all in OUT/.
  bool add_outputs = true;
  /// Runs only where no CUDA device is present.
  bool needs_no_cuda_device = false;
};

std::ostream& operator<<(std::ostream& out, const RejectionCase& rejection) {
  return out << rejection.name;
}

const std::vector<std::string> kSampleOutputs = {
    "--quiet",       "--summary",       "OUT/summary.json",
    "--endpoints-out", "OUT/endpoints.npy", "--labels-out",
    "OUT/labels.npy", "--base-out",     "OUT/base.npy",
    "--trajectories", "2",              "--trajectories-out",
    "OUT/trajectories.npy"};

const std::vector<std::string> kFieldOutputs = {
    "--json",          "OUT/field.json",       "--velocity-out",
    "OUT/velocity.npy", "--log-density-out",   "OUT/log_density.npy",
    "--responsibilities-out", "OUT/responsibilities.npy"};

std::string mixture_text(const std::string& atoms, const std::string& weights) {
  return "{\"atoms\": " + atoms + ", \"weights\": " + weights + "}\n";
}

RejectionCase mixture_case(std::string name, std::string contents, int exit_status,
                           std::vector<std::vector<std::string>> message_parts) {
  RejectionCase rejection;
  rejection.name = std::move(name);
  rejection.arguments = {"sample", "--mixture", "IN/mixture.json", "-n", "2000"};
  rejection.inputs = {{"mixture.json", std::move(contents)}};
  rejection.exit_status = exit_status;
  rejection.message_parts = std::move(message_parts);
  return rejection;
}

std::vector<RejectionCase> mixture_cases() {
  const std::string atoms = "[[0, 0], [1, 1]]";
  return {
      mixture_case("negative_weight", mixture_text(atoms, "[-0.5, 1.5]"), 2,
                   {{"weights[0]"}, {"-0.5"}, {"non-negative"}}),
      // JSON has no NaN or infinity. nlohmann::json rejects a number beyond
      // the double range, such as 1e999, as invalid JSON.
      mixture_case("infinite_weight", mixture_text(atoms, "[1e999, 0.5]"), 3,
                   {{"mixture.json"}, {"1e999"}, {"finite"}}),
      mixture_case("string_weight", mixture_text(atoms, "[\"NaN\", 0.5]"), 3,
                   {{"mixture.json"}, {"weights[0]"}, {"\"NaN\""}, {"must be a number"}}),
      mixture_case("zero_weights", mixture_text(atoms, "[0, 0]"), 2,
                   {{"weights are zero"}, {"at least one weight must be positive"}}),
      mixture_case("weights_not_normalised", mixture_text(atoms, "[0.5, 0.6]"), 2,
                   {{"sum to 1.1"}, {"must sum to 1 within"}}),
      mixture_case("unequal_dimensions", mixture_text("[[0, 0], [1, 1, 2]]", "[0.5, 0.5]"),
                   3, {{"mixture.json"}, {"atoms[1]"}, {"3 coordinates"}, {"same dimension"}}),
      mixture_case("infinite_coordinate", mixture_text("[[0, 1e999], [1, 1]]", "[0.5, 0.5]"),
                   3, {{"mixture.json"}, {"1e999"}, {"finite"}}),
      mixture_case("no_atoms", mixture_text("[]", "[]"), 3,
                   {{"mixture.json"}, {"atoms"}, {"non-empty"}}),
      mixture_case("missing_weights", "{\"atoms\": [[0, 0], [1, 1]]}\n", 3,
                   {{"mixture.json"}, {"missing key \"weights\""}, {"\"atoms\" and \"weights\""}}),
      mixture_case("unknown_key",
                   "{\"atoms\": [[0, 0], [1, 1]], \"weights\": [0.5, 0.5], \"extra\": 1}\n",
                   3, {{"mixture.json"}, {"\"extra\""}, {"valid keys"}}),
      mixture_case("repeated_key",
                   "{\"atoms\": [[0, 0], [1, 1]], \"weights\": [0.5, 0.5], \"weights\": [0.9, 0.1]}\n",
                   3, {{"mixture.json"}, {"\"weights\""}, {"more than once"}}),
      // The second comma on line 2 is the error, at column 10.
      mixture_case("malformed_json", "{\"atoms\": [[0, 0],\n [1, 1]],, \"weights\": [0.5, 0.5]}\n",
                   3, {{"mixture.json"}, {"line 2"}, {"column 10"}}),
  };
}

std::vector<RejectionCase> mixture_file_cases() {
  RejectionCase missing_file;
  missing_file.name = "missing_mixture_file";
  missing_file.arguments = {"sample", "--mixture", "IN/no_such_mixture.json", "-n", "2000"};
  missing_file.exit_status = 3;
  missing_file.message_parts = {{"no_such_mixture.json"}, {"No such file or directory"}};
  // Every missing input file exits with the file-error status, whichever
  // option names it.
  RejectionCase missing_starts = missing_file;
  missing_starts.name = "missing_starts_file";
  missing_starts.arguments = {"sample", "--starts", "IN/no_such_starts.npy"};
  missing_starts.message_parts = {{"no_such_starts.npy"}, {"No such file or directory"}};
  RejectionCase missing_field_points = missing_file;
  missing_field_points.name = "missing_field_points_file";
  missing_field_points.arguments = {"field", "--points", "IN/no_such_points.npy", "--times",
                                    "0.5"};
  missing_field_points.message_parts = {{"no_such_points.npy"}, {"No such file or directory"}};
  RejectionCase missing_ot_points = missing_file;
  missing_ot_points.name = "missing_ot_points_file";
  missing_ot_points.arguments = {"ot", "--quiet", "--points", "IN/no_such_grid.npy",
                                 "--labels-out", "OUT/cells.npy", "--summary", "OUT/ot.json"};
  missing_ot_points.message_parts = {{"no_such_grid.npy"}, {"No such file or directory"}};
  missing_ot_points.add_outputs = false;
  return {missing_file, missing_starts, missing_field_points, missing_ot_points};
}

RejectionCase option_case(std::string name, std::vector<std::string> options,
                          std::vector<std::vector<std::string>> message_parts,
                          int exit_status = 2) {
  RejectionCase rejection;
  rejection.name = std::move(name);
  rejection.arguments = {"sample", "-n", "2000"};
  rejection.arguments.insert(rejection.arguments.end(), options.begin(), options.end());
  rejection.exit_status = exit_status;
  rejection.message_parts = std::move(message_parts);
  return rejection;
}

RejectionCase count_case(std::string name, std::string count,
                         std::vector<std::vector<std::string>> message_parts) {
  RejectionCase rejection;
  rejection.name = std::move(name);
  rejection.arguments = {"sample", "-n", std::move(count)};
  rejection.message_parts = std::move(message_parts);
  return rejection;
}

std::vector<RejectionCase> sample_count_cases() {
  return {
      count_case("n_zero", "0", {{"-n '0'"}, {"at least 1"}}),
      count_case("n_negative", "-5", {{"-n '-5'"}, {"at least 1"}}),
      count_case("n_not_a_number", "abc", {{"-n 'abc'"}, {"not a number"}}),
      count_case("n_not_whole", "2.5", {{"-n '2.5'"}, {"whole number"}}),
      count_case("n_hexadecimal", "0x10", {{"-n '0x10'"}, {"decimal"}}),
      count_case("n_overflows", "1e400", {{"-n '1e400'"}, {"below 2^63"}}),
  };
}

// A value must appear as the user wrote it or in its shortest round-trip
// form, so "eps -0.1:" and not "eps -0.10000000000000001:".
std::vector<RejectionCase> sample_option_cases() {
  const std::string interval = "(0, 1)";
  return {
      option_case("eps_zero", {"--eps", "0"}, {{"eps 0:"}, {interval}}),
      option_case("eps_one", {"--eps", "1"}, {{"eps 1:"}, {interval}}),
      option_case("eps_above_one", {"--eps", "1.5"}, {{"eps 1.5:"}, {interval}}),
      option_case("eps_negative", {"--eps", "-0.1"}, {{"eps -0.1:"}, {interval}}),
      option_case("eps_below_double_resolution", {"--eps", "1e-16"},
                  {{"eps 1e-16:"}, {"double"}, {"use eps >= "}}),
      option_case("eps_below_float_resolution", {"--precision", "float", "--eps", "1e-7"},
                  {{"eps 1e-7:", "eps 1e-07:"}, {"float"}, {"use eps >= "}}),
      option_case("rtol_zero", {"--rtol", "0"}, {{"rtol 0:"}, {"positive"}}),
      option_case("rtol_overflows", {"--rtol", "1e400"}, {{"--rtol '1e400'"}, {"finite"}}),
      option_case("eps_underflows", {"--eps", "1e-400"}, {{"--eps '1e-400'"}, {"round to 0"}}),
      option_case("eps_nan", {"--eps", "nan"}, {{"--eps 'nan'"}, {"finite"}}),
      option_case("rtol_negative", {"--rtol", "-1"}, {{"rtol -1:"}, {"positive"}}),
      option_case("atol_zero", {"--atol", "0"}, {{"atol 0:"}, {"positive"}}),
      option_case("atol_negative", {"--atol", "-1"}, {{"atol -1:"}, {"positive"}}),
      option_case("rtol_not_a_number", {"--rtol", "tight"}, {{"'tight'"}, {"not a number"}}),
      option_case("rtol_below_double_precision", {"--rtol", "1e-17"},
                  {{"rtol 1e-17:"}, {"double"}, {"use rtol >= "}}),
      option_case("atol_below_double_precision", {"--atol", "1e-17"},
                  {{"atol 1e-17:"}, {"double"}, {"use atol >= "}}),
      option_case("rtol_below_float_precision", {"--precision", "float", "--rtol", "1e-8"},
                  {{"rtol 1e-8:", "rtol 1e-08:"}, {"float"}, {"use rtol >= "}}),
      option_case("steps_zero", {"--method", "rk4", "--steps", "0"},
                  {{"--steps '0'"}, {"from 1 to 2147483647"}}),
      option_case("steps_negative", {"--method", "rk4", "--steps", "-3"},
                  {{"--steps '-3'"}, {"from 1 to 2147483647"}}),
      option_case("steps_not_a_number", {"--method", "rk4", "--steps", "many"},
                  {{"--steps 'many'"}, {"not a number"}}),
      option_case("steps_not_whole", {"--method", "rk4", "--steps", "2.5"},
                  {{"--steps '2.5'"}, {"whole number"}}),
      option_case("max_steps_zero", {"--max-steps", "0"},
                  {{"--max-steps '0'"}, {"from 1 to 4294967295"}}),
      option_case("max_steps_negative", {"--max-steps", "-1"},
                  {{"--max-steps '-1'"}, {"from 1 to 4294967295"}}),
      option_case("max_steps_too_large", {"--max-steps", "5e9"},
                  {{"--max-steps '5e9'"}, {"from 1 to 4294967295"}}),
      option_case("max_steps_one_above_limit", {"--max-steps", "4294967296"},
                  {{"--max-steps '4294967296'"}, {"from 1 to 4294967295"}}),
      option_case("unknown_schedule", {"--schedule", "spiral"},
                  {{"'spiral'"}, {"linear"}, {"variance-preserving"}, {"cosine"}, {"all"}}),
      option_case("unknown_method", {"--method", "rk45"},
                  {{"'rk45'"}, {"euler"}, {"heun"}, {"rk4"}, {"dopri5"}}),
      option_case("unknown_backend", {"--backend", "opencl"},
                  {{"'opencl'"}, {"auto"}, {"cpu"}, {"cuda"}}),
      option_case("unknown_velocity_path", {"--velocity-path", "gemm"},
                  {{"'gemm'"}, {"auto"}, {"direct"}, {"matrix"}}),
      option_case("unknown_precision", {"--precision", "half"},
                  {{"'half'"}, {"double"}, {"float"}}),
      option_case("unknown_option", {"--bogus"}, {{"--bogus"}}),
      // An empty value would otherwise read as "not given": here, the
      // built-in example in place of a mixture file.
      option_case("empty_mixture_path", {"--mixture", ""},
                  {{"--mixture"}, {"empty value"}}),
      option_case("threads_too_many", {"--threads", "100000"},
                  {{"--threads '100000'"}, {"from 0 to 1024"}}),
      option_case("seed_negative", {"--seed", "-1"}, {{"--seed '-1'"}, {"18446744073709551615"}}),
      option_case("seed_too_large", {"--seed", "18446744073709551616"},
                  {{"18446744073709551616"}, {"decimal integer"}}),
      option_case("steps_beyond_int", {"--steps", "2147483648"},
                  {{"--steps '2147483648'"}, {"out of range"}, {"from 1 to 2147483647"}}),
      option_case("steps_beyond_int_in_scientific_notation", {"--steps", "1e10"},
                  {{"--steps '1e10'"}, {"from 1 to 2147483647"}}),
  };
}

/// A sample option whose value is not a valid number: fmg's own message
/// names the option and the value, never the option parser's.
RejectionCase number_case(std::string name, std::vector<std::string> options,
                          std::vector<std::vector<std::string>> message_parts) {
  RejectionCase rejection = option_case(std::move(name), std::move(options),
                                        std::move(message_parts));
  rejection.absent_parts = {"Could not convert", "of the option's type"};
  return rejection;
}

/// A --trajectories value that is rejected: the standard outputs less
/// their own --trajectories 2.
RejectionCase trajectories_case(std::string name, std::string value,
                                std::vector<std::vector<std::string>> message_parts) {
  RejectionCase rejection = number_case(
      std::move(name),
      {"--quiet", "--summary", "OUT/summary.json", "--endpoints-out", "OUT/endpoints.npy",
       "--trajectories-out", "OUT/trajectories.npy", "--trajectories", std::move(value)},
      std::move(message_parts));
  rejection.add_outputs = false;
  return rejection;
}

std::vector<RejectionCase> sample_number_cases() {
  return {
      number_case("eps_malformed_exponent", {"--eps", "0.5e"},
                  {{"--eps '0.5e'"}, {"not a number"}}),
      number_case("initial_step_not_a_number", {"--initial-step", "small"},
                  {{"--initial-step 'small'"}, {"not a number"}}),
      number_case("threads_not_whole", {"--threads", "1.5"},
                  {{"--threads '1.5'"}, {"whole number"}}),
      number_case("threads_negative", {"--threads", "-2"},
                  {{"--threads '-2'"}, {"from 0 to 1024"}}),
      trajectories_case("trajectories_not_a_number", "abc",
                        {{"--trajectories 'abc'"}, {"decimal notation"}}),
      trajectories_case("trajectories_negative", "-3",
                        {{"--trajectories '-3'"}, {"from 0 to 2147483647"}}),
      // 1e7 is a whole number, so the check against -n 2000 rejects it.
      trajectories_case("trajectories_beyond_samples", "1e7",
                        {{"--trajectories 10000000"}, {"exceeds the number of samples 2000"}}),
      trajectories_case("trajectories_beyond_int", "3e9",
                        {{"--trajectories '3e9'"}, {"from 0 to 2147483647"}}),
      number_case("trajectory_points_one", {"--trajectory-points", "1"},
                  {{"--trajectory-points '1'"}, {"from 2 to 2147483647"}}),
      number_case("trajectory_points_not_whole", {"--trajectory-points", "2.5"},
                  {{"--trajectory-points '2.5'"}, {"whole number"}}),
  };
}

std::vector<RejectionCase> backend_cases() {
  RejectionCase cuda = option_case("cuda_without_device", {"--backend", "cuda"},
                                   {{"CUDA"}, {"--backend cpu"}}, 4);
  cuda.needs_no_cuda_device = true;
  return {cuda};
}

// Starting points: five rows at the origin, so a valid file differs from
// each broken one in a single respect.
std::string valid_starts() { return npy_bytes({5, 2}, std::vector<double>(10, 0.0)); }

RejectionCase starts_case(std::string name, std::string contents, int exit_status,
                          std::vector<std::vector<std::string>> message_parts,
                          std::vector<std::string> extra_options = {}) {
  RejectionCase rejection;
  rejection.name = std::move(name);
  rejection.arguments = {"sample", "--starts", "IN/starts.npy"};
  rejection.arguments.insert(rejection.arguments.end(), extra_options.begin(),
                             extra_options.end());
  rejection.inputs = {{"starts.npy", std::move(contents)}};
  rejection.exit_status = exit_status;
  rejection.message_parts = std::move(message_parts);
  return rejection;
}

/// A --starts file of five rows in d = 2 with the dtype `descr`, whose
/// items have `item_size` bytes, all zero.
RejectionCase dtype_case(std::string name, const std::string& descr, std::size_t item_size,
                         std::vector<std::string> dtype_parts) {
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (5, 2), }";
  // The preamble is 10 bytes and the data starts at a multiple of 64.
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header + std::string(10 * item_size, '\0');
  std::vector<std::vector<std::string>> message_parts = {
      {"starts.npy"}, {"unsupported dtype"}, {"'<f4' (float32) and '<f8' (float64)"}};
  for (std::string& part : dtype_parts) message_parts.push_back({std::move(part)});
  RejectionCase rejection = starts_case(std::move(name), bytes, 3, std::move(message_parts));
  rejection.absent_parts = {"(int64)", "(uint8)", "(uint32)"};
  return rejection;
}

std::vector<RejectionCase> starts_cases() {
  std::string bad_magic = valid_starts();
  bad_magic[1] = 'X';
  const std::string valid = valid_starts();
  std::vector<double> with_nan(10, 0.0);
  with_nan[3 * 2 + 1] = std::nan("");
  std::vector<double> huge(10, 0.0);
  huge[2 * 2 + 1] = 1e300;
  std::vector<double> huge_for_float(10, 0.0);
  huge_for_float[1] = -1e20;
  return {
      starts_case("starts_bad_magic", bad_magic, 3, {{"starts.npy"}, {"magic"}}),
      starts_case("starts_truncated_data", valid.substr(0, valid.size() - 8), 3,
                  {{"starts.npy"}, {"72 bytes"}, {"needs 80 bytes"}}),
      starts_case("starts_truncated_header", valid.substr(0, 7), 3,
                  {{"starts.npy"}, {"byte 7"}}),
      starts_case("starts_wrong_columns", npy_bytes({5, 3}, std::vector<double>(15, 0.0)), 2,
                  {{"starts.npy"}, {"(5, 3)"}, {"2 are expected"}}),
      starts_case("starts_nan", npy_bytes({5, 2}, with_nan), 2,
                  {{"starts.npy"}, {"row 3"}, {"column 1"}, {"finite"}}),
      starts_case("starts_huge", npy_bytes({5, 2}, huge), 2,
                  {{"starts.npy"}, {"row 2"}, {"column 1"}, {"1e150"}}),
      starts_case("starts_huge_for_float", npy_bytes({5, 2}, huge_for_float), 2,
                  {{"starts.npy"}, {"row 0"}, {"column 1"}, {"1e15"}},
                  {"--precision", "float"}),
      starts_case("starts_rows_disagree_with_n", valid, 2,
                  {{"-n 4"}, {"5 starting points"}}, {"-n", "4"}),
      // A dtype the input does not accept is a file error, whether or not
      // other inputs accept it, and the message lists only float32 and
      // float64.
      dtype_case("starts_int32_dtype", "<i4", 4, {"'<i4' (int32)"}),
      dtype_case("starts_float16_dtype", "<f2", 2, {"'<f2'"}),
      dtype_case("starts_big_endian_dtype", ">i4", 4, {"'>i4'", "astype('<f8')"}),
  };
}

RejectionCase output_case(std::string name, std::vector<std::string> arguments,
                          int exit_status,
                          std::vector<std::vector<std::string>> message_parts) {
  RejectionCase rejection;
  rejection.name = std::move(name);
  rejection.arguments = std::move(arguments);
  rejection.exit_status = exit_status;
  rejection.message_parts = std::move(message_parts);
  rejection.add_outputs = false;
  return rejection;
}

std::vector<RejectionCase> output_path_cases() {
  const std::vector<std::string> run = {"sample", "-n", "2000", "--quiet"};
  const auto with = [&run](std::vector<std::string> outputs) {
    std::vector<std::string> arguments = run;
    arguments.insert(arguments.end(), outputs.begin(), outputs.end());
    return arguments;
  };
  RejectionCase field_output = output_case(
      "field_velocity_in_missing_directory",
      {"field", "--points", "IN/points.npy", "--times", "0.5", "--json", "OUT/field.json",
       "--velocity-out", "OUT/missing/velocity.npy", "--log-density-out",
       "OUT/log_density.npy"},
      3, {{"missing/velocity.npy"}, {"No such file or directory"}});
  field_output.inputs = {{"points.npy", npy_bytes({1, 2}, {0.5, -0.5})}};
  return {
      // With every schedule the path gets the schedule's name appended; a
      // directory must still be rejected, not turned into OUT_linear.
      output_case("endpoints_directory_with_every_schedule",
                  with({"--endpoints-out", "OUT/"}), 3, {{"the path is a directory"}}),
      output_case("summary_dash", with({"--summary", "-"}), 2,
                  {{"invalid --summary '-'"}, {"standard output"}}),
      output_case("endpoints_dash_with_every_schedule", with({"--endpoints-out", "-"}), 2,
                  {{"invalid output path '-'"}, {"standard output"}}),
      // 1e18 samples of two doubles are 1.6e19 bytes, past 2^64: the byte
      // count must not wrap around into a small number.
      output_case("endpoints_beyond_a_file_size",
                  {"sample", "-n", "1e18", "--quiet", "--schedule", "linear",
                   "--endpoints-out", "OUT/endpoints.npy"},
                  3, {{"endpoints.npy"}, {"1.6e+19 bytes"}, {"more than a file can hold"}}),
      output_case("summary_in_missing_directory",
                  with({"--summary", "OUT/missing/summary.json", "--endpoints-out",
                        "OUT/endpoints.npy", "--labels-out", "OUT/labels.npy",
                        "--base-out", "OUT/base.npy"}),
                  3, {{"missing/summary.json"}, {"No such file or directory"}}),
      output_case("labels_in_missing_directory",
                  with({"--summary", "OUT/summary.json", "--endpoints-out",
                        "OUT/endpoints.npy", "--base-out", "OUT/base.npy",
                        "--labels-out", "OUT/missing/labels.npy"}),
                  3, {{"missing/labels"}, {"No such file or directory"}}),
      // The trajectories file is staged only after the first run.
      output_case("trajectories_in_missing_directory",
                  with({"--summary", "OUT/summary.json", "--endpoints-out",
                        "OUT/endpoints.npy", "--labels-out", "OUT/labels.npy",
                        "--trajectories", "2", "--trajectories-out",
                        "OUT/missing/trajectories.npy"}),
                  3, {{"missing/trajectories"}, {"No such file or directory"}}),
      // With one schedule the endpoint file name gets no schedule name, so
      // both options name the same file.
      output_case("output_path_given_twice",
                  with({"--schedule", "linear", "--summary", "OUT/same.npy",
                        "--endpoints-out", "OUT/same.npy"}),
                  2,
                  {{"--summary and --endpoints-out both write '"}, {"same.npy'"},
                   {"its own path"}}),
      output_case("output_path_spelled_twice",
                  with({"--schedule", "linear", "--labels-out", "OUT/same.npy",
                        "--endpoints-out", "OUT/./same.npy"}),
                  2,
                  {{"--endpoints-out '"}, {"/./same.npy' and --labels-out '"},
                   {"are the same file"}}),
      // Under several schedules each array file gets the schedule name, so
      // the message names the tagged path.
      output_case("tagged_output_path_given_twice",
                  with({"--schedule", "all", "--endpoints-out", "OUT/run.npy",
                        "--labels-out", "OUT/run.npy"}),
                  2,
                  {{"--endpoints-out and --labels-out both write '"}, {"run_linear.npy'"}}),
      output_case("output_path_is_directory", with({"--summary", "OUT"}), 3,
                  {{"is a directory"}}),
      // 1e6 paths of 1e6 points in d = 2 would need 16 TB of memory.
      output_case("trajectories_exceed_memory",
                  {"sample", "-n", "1e6", "--quiet", "--schedule", "linear",
                   "--summary", "OUT/summary.json", "--trajectories", "1000000",
                   "--trajectory-points", "1000000", "--trajectories-out",
                   "OUT/trajectories.npy"},
                  2, {{"--trajectories 1000000"}, {"GiB of memory"}, {"available"}}),
      // Renaming onto /dev/null as root would replace the device itself.
      output_case("output_path_is_device", with({"--summary", "/dev/null"}), 3,
                  {{"/dev/null"}, {"not a regular file"}}),
      field_output,
  };
}

/// An output option that names the input file of `option`, which must be
/// left as it was.
RejectionCase output_on_input_case(std::string name, std::vector<std::string> arguments,
                                   std::vector<std::pair<std::string, std::string>> inputs,
                                   std::string output, std::string option) {
  RejectionCase rejection = output_case(
      std::move(name), std::move(arguments), 2,
      {{"output path '"}, {output}, {"is also an input (" + option + " '"},
       {"choose another output path"}});
  rejection.inputs = std::move(inputs);
  return rejection;
}

std::vector<RejectionCase> output_on_input_cases() {
  const std::string mixture = mixture_text("[[0, 0], [1, 1]]", "[0.5, 0.5]");
  const std::string points = npy_bytes({3, 2}, {0, 0, 1, -2, -0.5, 3});
  return {
      output_on_input_case(
          "sample_endpoints_on_starts",
          {"sample", "--quiet", "--schedule", "linear", "--starts", "IN/starts.npy",
           "--endpoints-out", "IN/starts.npy"},
          {{"starts.npy", valid_starts()}}, "starts.npy", "--starts"),
      output_on_input_case(
          "sample_summary_on_mixture",
          {"sample", "-n", "2000", "--quiet", "--mixture", "IN/mixture.json", "--summary",
           "IN/./mixture.json"},
          {{"mixture.json", mixture}}, "mixture.json", "--mixture"),
      output_on_input_case(
          "sample_labels_on_starts_with_schedule_name",
          {"sample", "--quiet", "--schedule", "all", "--starts", "IN/run_cosine.npy",
           "--labels-out", "IN/run.npy"},
          {{"run_cosine.npy", valid_starts()}}, "run_cosine.npy", "--starts"),
      output_on_input_case(
          "field_velocity_on_points",
          {"field", "--points", "IN/points.npy", "--times", "0.5", "--velocity-out",
           "IN/points.npy"},
          {{"points.npy", points}}, "points.npy", "--points"),
      output_on_input_case(
          "field_json_on_mixture",
          {"field", "--mixture", "IN/mixture.json", "--points", "IN/points.npy", "--times",
           "0.5", "--json", "IN/mixture.json"},
          {{"mixture.json", mixture}, {"points.npy", points}}, "mixture.json", "--mixture"),
      output_on_input_case(
          "ot_labels_on_points",
          {"ot", "--quiet", "--points", "IN/grid.npy", "--labels-out", "IN/grid.npy"},
          {{"grid.npy", points}}, "grid.npy", "--points"),
      output_on_input_case(
          "ot_start_labels_on_starts",
          {"ot", "--quiet", "--starts", "IN/base.npy", "--start-labels-out", "IN/base.npy"},
          {{"base.npy", points}}, "base.npy", "--starts"),
      output_on_input_case(
          "ot_summary_on_mixture",
          {"ot", "--quiet", "--mixture", "IN/mixture.json", "--summary", "IN/mixture.json"},
          {{"mixture.json", mixture}}, "mixture.json", "--mixture"),
      output_on_input_case(
          "density_out_on_mixture",
          {"density", "--mixture", "IN/mixture.json", "--out", "IN/mixture.json"},
          {{"mixture.json", mixture}}, "mixture.json", "--mixture"),
      output_on_input_case(
          "crosscheck_summary_on_mixture",
          {"crosscheck", "--mixture", "IN/mixture.json", "--summary", "IN/mixture.json"},
          {{"mixture.json", mixture}}, "mixture.json", "--mixture"),
  };
}

RejectionCase field_case(std::string name, std::vector<std::string> options,
                         std::vector<std::vector<std::string>> message_parts,
                         std::string points = npy_bytes({3, 2}, {0, 0, 1, -2, -0.5, 3})) {
  RejectionCase rejection;
  rejection.name = std::move(name);
  rejection.arguments = {"field"};
  rejection.arguments.insert(rejection.arguments.end(), options.begin(), options.end());
  rejection.inputs = {{"points.npy", std::move(points)}};
  rejection.message_parts = std::move(message_parts);
  return rejection;
}

std::vector<RejectionCase> field_cases() {
  RejectionCase schedule_all =
      field_case("field_schedule_all", {"--points", "IN/points.npy", "--times", "0.5",
                                        "--schedule", "all"},
                 {{"'all'"}, {"linear"}, {"cosine"}});
  // fmg field evaluates one schedule, so its message must not offer "all".
  schedule_all.absent_parts = {"and all"};
  return {
      field_case("field_time_one", {"--points", "IN/points.npy", "--times", "1"},
                 {{"time 1:"}, {"[0, 1)"}}),
      field_case("field_time_negative", {"--points", "IN/points.npy", "--times", "-0.1"},
                 {{"time -0.1:"}, {"[0, 1)"}}),
      field_case("field_time_not_a_number", {"--points", "IN/points.npy", "--times", "noon"},
                 {{"'noon'"}, {"not a number"}}),
      field_case("field_point_huge", {"--points", "IN/points.npy", "--times", "0.5"},
                 {{"points.npy"}, {"row 1"}, {"1e150"}}, npy_bytes({2, 2}, {0, 0, 0, 1e200})),
      field_case("field_time_empty_item", {"--points", "IN/points.npy", "--times", "0.5,,0.6"},
                 {{"'0.5,,0.6'"}, {"empty item"}}),
      field_case("field_time_trailing_comma", {"--points", "IN/points.npy", "--times", "0.5,"},
                 {{"'0.5,'"}, {"empty item"}}),
      field_case("field_times_count_zero", {"--points", "IN/points.npy", "--times", "0:0.5:0"},
                 {{"'0:0.5:0'"}, {"COUNT must be a whole number from 2 to 1000000"}}),
      field_case("field_times_count_one", {"--points", "IN/points.npy", "--times", "0:0.5:1"},
                 {{"'0:0.5:1'"}, {"COUNT must be a whole number from 2 to 1000000"}}),
      field_case("field_times_count_too_large",
                 {"--points", "IN/points.npy", "--times", "0:0.5:2e6"},
                 {{"'0:0.5:2e6'"}, {"COUNT must be a whole number from 2 to 1000000"}}),
      field_case("field_times_count_not_a_number",
                 {"--points", "IN/points.npy", "--times", "0:0.5:ten"},
                 {{"'0:0.5:ten'"}, {"COUNT must be a whole number from 2 to 1000000"}}),
      field_case("field_missing_points", {"--times", "0.5"}, {{"--points"}, {"required"}}),
      field_case("field_points_wrong_dimension",
                 {"--points", "IN/points.npy", "--times", "0.5"},
                 {{"points.npy"}, {"(2, 1)"}, {"2 are expected"}}, npy_bytes({2, 1}, {0, 1})),
      schedule_all,
  };
}

/// Rejections of fmg ot, density and crosscheck; each writes its summary
/// (and, for density, its array) to OUT/, which must stay empty.
std::vector<RejectionCase> analysis_cases() {
  const std::string three_d =
      "{\"atoms\": [[0, 0, 0], [1, 1, 1]], \"weights\": [0.5, 0.5]}\n";
  const auto ot_case = [](std::string name, std::vector<std::string> options,
                          std::vector<std::vector<std::string>> message) {
    std::vector<std::string> arguments{"ot", "--quiet", "--summary", "OUT/ot.json"};
    arguments.insert(arguments.end(), options.begin(), options.end());
    return RejectionCase{std::move(name), arguments, {}, 2, std::move(message), {}, false};
  };
  const auto density_case = [](std::string name, std::vector<std::string> options,
                               std::vector<std::vector<std::string>> message) {
    std::vector<std::string> arguments{"density", "--out", "OUT/rho.npy", "--summary",
                                       "OUT/rho.json"};
    arguments.insert(arguments.end(), options.begin(), options.end());
    return RejectionCase{std::move(name), arguments, {}, 2, std::move(message),
                         {"Could not convert"}, false};
  };
  RejectionCase exact_in_3d =
      ot_case("ot_exact_route_in_3d", {"--route", "exact", "--mixture", "IN/mixture.json"},
              {{"--route exact"}, {"dimension 3"}, {"mc-cpu"}});
  exact_in_3d.inputs = {{"mixture.json", three_d}};
  return {
      ot_case("ot_tolerance_zero", {"--tolerance", "0"}, {{"--tolerance 0"}, {"positive"}}),
      ot_case("ot_max_iterations_zero", {"--max-iterations", "0"},
              {{"--max-iterations '0'"}, {"from 1 to 2147483647"}}),
      ot_case("ot_tolerance_negative", {"--tolerance", "-1"},
              {{"--tolerance -1:"}, {"positive"}}),
      ot_case("ot_tolerance_malformed", {"--tolerance", "0.5e"},
              {{"--tolerance '0.5e'"}, {"not a number"}}),
      ot_case("ot_max_iterations_malformed", {"--max-iterations", "1e3x"},
              {{"--max-iterations '1e3x'"}, {"decimal notation"}}),
      ot_case("ot_max_iterations_not_whole", {"--max-iterations", "2.5"},
              {{"--max-iterations '2.5'"}, {"whole number"}}),
      ot_case("ot_trajectories_negative", {"--ot-trajectories", "-1"},
              {{"--ot-trajectories '-1'"}, {"from 0 to 2147483647"}}),
      ot_case("ot_trajectory_points_one", {"--trajectory-points", "1"},
              {{"--trajectory-points '1'"}, {"from 2 to 2147483647"}}),
      ot_case("ot_trajectories_out_without_count",
              {"--ot-trajectories-out", "OUT/paths.npy"},
              {{"--ot-trajectories-out needs --ot-trajectories M"}}),
      ot_case("ot_unknown_route", {"--route", "magic"}, {{"'magic'"}, {"mc-cpu"}}),
      ot_case("ot_samples_zero", {"--route", "mc-cpu", "--samples", "0"},
              {{"--samples '0'"}, {"at least 1"}}),
      exact_in_3d,
      density_case("density_grid_not_a_number", {"--grid", "fine"},
                   {{"--grid 'fine'"}, {"decimal notation"}}),
      density_case("density_grid_one", {"--grid", "1"},
                   {{"--grid '1'"}, {"from 2 to 2147483647"}}),
      density_case("density_grid_scientific_garbage", {"--grid", "1e3e"},
                   {{"--grid '1e3e'"}, {"not a number"}}),
      // The width 2e308 overflows a double.
      density_case("density_x_range_width_overflows", {"--x-range", "-1e308,1e308"},
                   {{"--x-range '-1e308,1e308'"}, {"at most 1e150 in magnitude"}}),
      density_case("density_y_range_infinite", {"--y-range", "0,inf"},
                   {{"--y-range '0,inf'"}, {"finite"}}),
      density_case("density_x_range_nan", {"--x-range", "nan,1"},
                   {{"--x-range 'nan,1'"}, {"finite"}}),
      density_case("density_x_range_reversed", {"--x-range", "2,1"},
                   {{"--x-range '2,1'"}, {"MIN must be below MAX"}}),
      RejectionCase{"density_grid_too_large",
                    {"density", "--grid", "100000", "--out", "OUT/rho.npy"}, {}, 2,
                    {{"--grid 100000"}, {"2^28"}}, {}, false},
      // The default three times allow 9459 points per axis, 200 times 1158.
      RejectionCase{"density_grid_hint_follows_times",
                    {"density", "--grid", "1200", "--times", "0.1:0.9:200", "--out",
                     "OUT/rho.npy"},
                    {}, 2, {{"--grid 1158 at most for 200 times"}}, {}, false},
      // 1e12 points in d = 2 would need 24 TB of memory.
      RejectionCase{"crosscheck_exceeds_memory",
                    {"crosscheck", "-n", "1e12", "--summary", "OUT/cc.json"}, {}, 2,
                    {{"--n 1e12"}, {"GiB of memory"}}, {}, false},
      RejectionCase{"crosscheck_time_zero",
                    {"crosscheck", "--times", "0", "--summary", "OUT/cc.json"}, {}, 2,
                    {{"time 0"}, {"(0, 1)"}}, {}, false},
  };
}

class CommandRejection : public testing::TestWithParam<RejectionCase> {};

TEST_P(CommandRejection, FailsWithMessageAndNoOutput) {
  const RejectionCase& rejection = GetParam();
  if (rejection.needs_no_cuda_device && cuda_device_present()) {
    GTEST_SKIP() << "a CUDA device is present, so --backend cuda is valid here";
  }
  const TempDirectory directory;
  const std::filesystem::path input_directory = directory.path() / "in";
  const std::filesystem::path output_directory = directory.path() / "out";
  std::filesystem::create_directory(input_directory);
  std::filesystem::create_directory(output_directory);
  for (const auto& [name, contents] : rejection.inputs) {
    write_bytes((input_directory / name).string(), contents);
  }
  std::vector<std::string> arguments = rejection.arguments;
  if (rejection.add_outputs) {
    const auto& outputs = arguments.front() == "field" ? kFieldOutputs : kSampleOutputs;
    arguments.insert(arguments.end(), outputs.begin(), outputs.end());
  }
  for (std::string& argument : arguments) {
    if (argument.rfind("IN/", 0) == 0) {
      argument = (input_directory / argument.substr(3)).string();
    } else if (argument.rfind("OUT/", 0) == 0) {
      argument = (output_directory / argument.substr(4)).string();
    } else if (argument == "OUT") {
      argument = output_directory.string();
    }
  }

  const CommandResult result = run_fmg(arguments);

  EXPECT_EQ(result.exit_status, rejection.exit_status) << describe_result(result);
  for (const std::vector<std::string>& alternatives : rejection.message_parts) {
    EXPECT_TRUE(contains_any(result.standard_error, alternatives));
  }
  for (const std::string& absent : rejection.absent_parts) {
    EXPECT_THAT(result.standard_error, Not(HasSubstr(absent)));
  }
  EXPECT_THAT(result.standard_output, IsEmpty());
  EXPECT_THAT(directory_entries(output_directory), IsEmpty());
  std::set<std::string> input_names;
  for (const auto& [name, contents] : rejection.inputs) {
    input_names.insert(name);
    EXPECT_EQ(read_bytes((input_directory / name).string()), contents)
        << "input file " << name << " changed";
  }
  EXPECT_EQ(directory_entries(input_directory), input_names);
}

std::string case_name(const testing::TestParamInfo<RejectionCase>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Mixture, CommandRejection, testing::ValuesIn(mixture_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(MixtureFile, CommandRejection,
                         testing::ValuesIn(mixture_file_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(SampleCount, CommandRejection,
                         testing::ValuesIn(sample_count_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(SampleOption, CommandRejection,
                         testing::ValuesIn(sample_option_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(SampleNumber, CommandRejection,
                         testing::ValuesIn(sample_number_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(Backend, CommandRejection, testing::ValuesIn(backend_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Starts, CommandRejection, testing::ValuesIn(starts_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(OutputPath, CommandRejection,
                         testing::ValuesIn(output_path_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(OutputOnInput, CommandRejection,
                         testing::ValuesIn(output_on_input_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(Analysis, CommandRejection, testing::ValuesIn(analysis_cases()),
                         case_name);
INSTANTIATE_TEST_SUITE_P(Field, CommandRejection, testing::ValuesIn(field_cases()),
                         case_name);

// ---------------------------------------------------------------------------
// Version and help.
// ---------------------------------------------------------------------------

TEST(Program, PrintsVersion) {
  const CommandResult result = run_fmg({"--version"});

  EXPECT_EQ(result.exit_status, 0) << describe_result(result);
  EXPECT_THAT(result.standard_output, HasSubstr(std::string("fmg ") + FMG_EXPECTED_VERSION));
}

TEST(Program, RequiresSubcommand) {
  const CommandResult result = run_fmg({});

  EXPECT_EQ(result.exit_status, 2) << describe_result(result);
  EXPECT_THAT(result.standard_error, HasSubstr("subcommand"));
}

TEST(Program, NamesUnknownSubcommand) {
  for (const std::string word : {"foo", "help"}) {
    SCOPED_TRACE(word);

    const CommandResult result = run_fmg({word});

    EXPECT_EQ(result.exit_status, 2) << describe_result(result);
    EXPECT_THAT(result.standard_error, HasSubstr("unknown subcommand '" + word + "'"));
    EXPECT_THAT(result.standard_error,
                HasSubstr("sample, field, density, crosscheck and ot"));
    EXPECT_THAT(result.standard_output, IsEmpty());
  }
}

TEST(SampleSteps, AcceptScientificNotation) {
  const CommandResult result =
      run_fmg({"sample", "-q", "-n", "50", "--schedule", "linear", "--backend", "cpu",
               "--method", "euler", "--steps", "1e2", "--max-steps", "1e3", "--json"});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  const json summary = json::parse(result.standard_output);
  EXPECT_EQ(summary["options"]["steps"], 100);
  EXPECT_EQ(summary["options"]["max_steps"], 1000);
}

/// Returns the line of `help` that documents `option`: its first word,
/// split at commas, contains the option ("-n,--n TEXT" documents "--n").
std::string help_line(const std::string& help, const std::string& option) {
  std::istringstream lines(help);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string first_word;
    words >> first_word;
    first_word = first_word.substr(0, first_word.find('='));
    std::istringstream names(first_word);
    std::string name;
    while (std::getline(names, name, ',')) {
      if (name == option) return line;
    }
  }
  return "";
}

TEST(SampleHelp, ListsEveryOption) {
  const std::vector<std::string> options = {
      "--mixture",    "--schedule",     "--n",          "--method",
      "--steps",      "--rtol",         "--atol",       "--initial-step",
      "--max-steps",  "--eps",          "--seed",       "--backend",
      "--precision",  "--threads",      "--chunk-size", "--starts",
      "--summary",    "--json",         "--endpoints-out", "--labels-out",
      "--base-out",   "--trajectories", "--trajectory-points",
      "--trajectories-out", "--velocity-path", "--quiet"};

  const CommandResult result = run_fmg({"sample", "--help"});

  EXPECT_EQ(result.exit_status, 0) << describe_result(result);
  for (const std::string& option : options) {
    SCOPED_TRACE(option);
    EXPECT_THAT(help_line(result.standard_output, option), Not(IsEmpty()));
  }
}

TEST(SampleHelp, ShowsDefaults) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> defaults = {
      {"--mixture", {"built-in"}},
      {"--schedule", {"=all"}},
      {"--n", {"1e6"}},
      {"--method", {"=dopri5"}},
      {"--steps", {"=100"}},
      {"--rtol", {"1e-6"}},
      {"--atol", {"1e-9"}},
      {"--initial-step", {"=0"}},
      {"--max-steps", {"=100000"}},
      {"--eps", {"=0.001", "=1e-3", "=1e-03"}},
      {"--seed", {"=20260617"}},
      {"--backend", {"=auto"}},
      {"--velocity-path", {"=auto"}},
      {"--precision", {"=double"}},
      {"--threads", {"=0"}},
      {"--chunk-size", {"=1048576"}},
      {"--trajectories", {"=0"}},
      {"--trajectory-points", {"=101"}},
  };

  const CommandResult result = run_fmg({"sample", "--help"});

  EXPECT_EQ(result.exit_status, 0) << describe_result(result);
  for (const auto& [option, alternatives] : defaults) {
    SCOPED_TRACE(option);
    EXPECT_TRUE(contains_any(help_line(result.standard_output, option), alternatives));
  }
}

TEST(FieldHelp, ListsEveryOption) {
  const std::vector<std::string> options = {
      "--mixture", "--schedule", "--points", "--times", "--precision", "--json",
      "--velocity-out", "--log-density-out", "--responsibilities-out"};

  const CommandResult result = run_fmg({"field", "--help"});

  EXPECT_EQ(result.exit_status, 0) << describe_result(result);
  for (const std::string& option : options) {
    SCOPED_TRACE(option);
    EXPECT_THAT(help_line(result.standard_output, option), Not(IsEmpty()));
  }
}

TEST(QuietHelp, SameTextInSampleAndOt) {
  for (const std::string subcommand : {"sample", "ot"}) {
    SCOPED_TRACE(subcommand);

    const CommandResult result = run_fmg({subcommand, "--help"});

    EXPECT_EQ(result.exit_status, 0) << describe_result(result);
    EXPECT_THAT(help_line(result.standard_output, "--quiet"),
                HasSubstr("No progress lines on stderr; warnings and errors still print"));
  }
}

TEST(ProgramHelp, ListsExitStatuses) {
  const CommandResult result = run_fmg({"--help"});

  EXPECT_EQ(result.exit_status, 0) << describe_result(result);
  for (const std::string status :
       {"0 success", "1 numerical failure", "2 invalid option", "3 a file", "4 backend",
        "5 fmg ot stopped at --max-iterations"}) {
    EXPECT_THAT(result.standard_output, HasSubstr(status));
  }
}

TEST(OtHelp, DocumentsNonConvergenceStatus) {
  const CommandResult result = run_fmg({"ot", "--help"});

  EXPECT_EQ(result.exit_status, 0) << describe_result(result);
  EXPECT_THAT(help_line(result.standard_output, "--max-iterations"),
              HasSubstr("exits with status 5"));
}

// ---------------------------------------------------------------------------
// fmg ot: exit status and warnings of a solve that stops early.
// ---------------------------------------------------------------------------

/// Runs fmg ot on the built-in example (the exact 2-D route) with its
/// summary and Laguerre labels in `directory`, plus `options`.
CommandResult run_ot(const TempDirectory& directory, const std::vector<std::string>& options) {
  write_bytes(directory.file("grid.npy"), npy_bytes({3, 2}, {0, 0, 2, 0, -1, -2}));
  std::vector<std::string> arguments = {"ot", "--quiet", "--cost-samples", "200",
                                        "--summary", directory.file("ot.json"), "--points",
                                        directory.file("grid.npy"), "--labels-out",
                                        directory.file("cells.npy")};
  arguments.insert(arguments.end(), options.begin(), options.end());
  return run_fmg(arguments);
}

// One Newton step leaves the residual near 5e-3, far above 1e-10.
TEST(OtConvergence, MaxIterationsWritesOutputsWarnsAndExitsFive) {
  const TempDirectory directory;

  const CommandResult result = run_ot(directory, {"--max-iterations", "1"});

  EXPECT_EQ(result.exit_status, 5) << describe_result(result);
  ASSERT_TRUE(std::filesystem::exists(directory.file("ot.json")));
  const json summary = json::parse(read_bytes(directory.file("ot.json")));
  EXPECT_EQ(summary["status"], "max_iterations");
  ASSERT_EQ(summary["warnings"].size(), 1u);
  const std::string warning = summary["warnings"][0].get<std::string>();
  EXPECT_THAT(warning, HasSubstr("stopped at --max-iterations 1"));
  EXPECT_THAT(warning, HasSubstr("above --tolerance 1e-10"));
  EXPECT_THAT(result.standard_error, HasSubstr("fmg: warning: " + warning));
  EXPECT_EQ(int32_values(read_npy(directory.file("cells.npy"))).size(), 3u);
}

TEST(OtConvergence, ConvergedSolveExitsZeroWithoutWarnings) {
  const TempDirectory directory;

  const CommandResult result = run_ot(directory, {});

  EXPECT_EQ(result.exit_status, 0) << describe_result(result);
  const json summary = json::parse(read_bytes(directory.file("ot.json")));
  EXPECT_EQ(summary["status"], "converged");
  EXPECT_THAT(summary["warnings"], IsEmpty());
  EXPECT_THAT(result.standard_error, Not(HasSubstr("warning")));
}

TEST(OtWarnings, SamplesWithExactRouteAreReported) {
  const TempDirectory directory;

  const CommandResult result = run_ot(directory, {"--route", "exact", "--samples", "1000"});

  EXPECT_EQ(result.exit_status, 0) << describe_result(result);
  const json summary = json::parse(read_bytes(directory.file("ot.json")));
  ASSERT_EQ(summary["warnings"].size(), 1u);
  EXPECT_THAT(summary["warnings"][0].get<std::string>(),
              HasSubstr("--samples has no effect with the exact route"));
}

// ---------------------------------------------------------------------------
// The JSON summary of a three-schedule run.
// ---------------------------------------------------------------------------

class SampleSummary : public testing::Test {
 protected:
  static constexpr std::uint64_t kSamples = 2000;
  static constexpr std::uint64_t kSeed = 7;

  static void SetUpTestSuite() {
    directory_ = std::make_unique<TempDirectory>();
    result_ = std::make_unique<CommandResult>(
        run_fmg({"sample", "-n", std::to_string(kSamples), "--seed", std::to_string(kSeed),
                 "--backend", "cpu", "--quiet", "--json", "--summary",
                 directory_->file("summary.json")}));
  }

  static void TearDownTestSuite() {
    result_.reset();
    directory_.reset();
  }

  void SetUp() override {
    ASSERT_EQ(result_->exit_status, 0) << describe_result(*result_);
    summary_ = json::parse(result_->standard_output);
    ASSERT_EQ(summary_.at("runs").size(), kScheduleNames.size());
  }

  static std::unique_ptr<TempDirectory> directory_;
  static std::unique_ptr<CommandResult> result_;
  json summary_;
};

std::unique_ptr<TempDirectory> SampleSummary::directory_;
std::unique_ptr<CommandResult> SampleSummary::result_;

TEST_F(SampleSummary, FileMatchesStdout) {
  const json from_file = json::parse(read_bytes(directory_->file("summary.json")));

  EXPECT_EQ(from_file, summary_);
}

TEST_F(SampleSummary, ListsSchedulesInOrder) {
  for (std::size_t s = 0; s < kScheduleNames.size(); ++s) {
    EXPECT_EQ(summary_["runs"][s]["schedule"], kScheduleNames[s]);
  }
}

TEST_F(SampleSummary, CountsSumToSamples) {
  for (const json& run : summary_["runs"]) {
    SCOPED_TRACE(run["schedule"].dump());
    const auto counts = run["counts"].get<std::vector<std::uint64_t>>();
    ASSERT_EQ(counts.size(), kWeights.size());

    EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), std::uint64_t{0}), kSamples);
    EXPECT_EQ(run["samples"], kSamples);
    EXPECT_EQ(run["succeeded"], kSamples);
  }
}

TEST_F(SampleSummary, ReportsNoFailures) {
  for (const json& run : summary_["runs"]) {
    SCOPED_TRACE(run["schedule"].dump());
    EXPECT_EQ(run["failures"]["max_steps_reached"], 0);
    EXPECT_EQ(run["failures"]["non_finite_state"], 0);
  }
}

TEST_F(SampleSummary, FractionsAreCountsOverSamples) {
  for (const json& run : summary_["runs"]) {
    SCOPED_TRACE(run["schedule"].dump());
    for (std::size_t k = 0; k < kWeights.size(); ++k) {
      SCOPED_TRACE(k);
      const double expected =
          run["counts"][k].get<double>() / static_cast<double>(kSamples);
      EXPECT_DOUBLE_EQ(run["fractions"][k].get<double>(), expected);
    }
  }
}

TEST_F(SampleSummary, WeightsMatchMixture) {
  for (const json& run : summary_["runs"]) {
    SCOPED_TRACE(run["schedule"].dump());
    EXPECT_EQ(run["weights"].get<std::vector<double>>(), kWeights);
  }
}

TEST_F(SampleSummary, StandardErrorsAreBinomial) {
  for (const json& run : summary_["runs"]) {
    SCOPED_TRACE(run["schedule"].dump());
    for (std::size_t k = 0; k < kWeights.size(); ++k) {
      SCOPED_TRACE(k);
      const double expected =
          std::sqrt(kWeights[k] * (1.0 - kWeights[k]) / static_cast<double>(kSamples));
      EXPECT_NEAR(run["standard_errors"][k].get<double>(), expected, 1e-12);
    }
  }
}

TEST_F(SampleSummary, FractionsNearWeights) {
  for (const json& run : summary_["runs"]) {
    SCOPED_TRACE(run["schedule"].dump());
    for (std::size_t k = 0; k < kWeights.size(); ++k) {
      SCOPED_TRACE(k);
      const double standard_error = run["standard_errors"][k].get<double>();
      EXPECT_NEAR(run["fractions"][k].get<double>(), kWeights[k], 5.0 * standard_error);
    }
  }
}

// Every schedule sends a base point to the same atom, so the counts agree.
TEST_F(SampleSummary, CountsAgreeAcrossSchedules) {
  const json& first = summary_["runs"][0]["counts"];
  for (const json& run : summary_["runs"]) {
    SCOPED_TRACE(run["schedule"].dump());
    EXPECT_EQ(run["counts"], first);
  }
}

TEST_F(SampleSummary, ReportsAcceptedSteps) {
  for (const json& run : summary_["runs"]) {
    SCOPED_TRACE(run["schedule"].dump());
    const json& steps = run["steps"];
    EXPECT_GT(steps["mean_accepted"].get<double>(), 0.0);
    EXPECT_GE(steps["max_accepted"].get<double>(), steps["mean_accepted"].get<double>());
    EXPECT_GT(steps["total_evaluations"].get<double>(), 0.0);
  }
}

TEST_F(SampleSummary, ReportsTimings) {
  for (const json& run : summary_["runs"]) {
    SCOPED_TRACE(run["schedule"].dump());
    const double wall_seconds = run["wall_seconds"].get<double>();
    ASSERT_GT(wall_seconds, 0.0);
    EXPECT_NEAR(run["samples_per_second"].get<double>(),
                static_cast<double>(kSamples) / wall_seconds,
                1e-9 * static_cast<double>(kSamples) / wall_seconds);
  }
}

TEST_F(SampleSummary, EchoesBackendPrecisionAndSeed) {
  for (const json& run : summary_["runs"]) {
    SCOPED_TRACE(run["schedule"].dump());
    EXPECT_EQ(run["backend"], "cpu");
    EXPECT_EQ(run["precision"], "double");
    EXPECT_EQ(run["seed"], kSeed);
  }
  EXPECT_EQ(summary_["options"]["samples"], kSamples);
  EXPECT_EQ(summary_["options"]["seed"], kSeed);
}

TEST(SampleVelocityPath, EachValueRunsAndIsRecorded) {
  // The built-in example is far below the automatic threshold, so auto
  // runs the direct path; both paths must send every sample to one atom.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"auto", "direct"}, {"direct", "direct"}, {"matrix", "matrix"}};
  json reference_counts;
  for (const auto& [requested, expected] : cases) {
    SCOPED_TRACE(requested);
    const CommandResult result =
        run_fmg({"sample", "--schedule", "linear", "-n", "400", "--backend", "cpu",
                 "--velocity-path", requested, "--quiet", "--json"});
    ASSERT_EQ(result.exit_status, 0) << describe_result(result);
    const json summary = json::parse(result.standard_output);

    EXPECT_EQ(summary["options"]["velocity_path_requested"], requested);
    const json& run = summary["runs"][0];
    EXPECT_EQ(run["velocity_path"], expected);
    if (reference_counts.is_null()) reference_counts = run["counts"];
    EXPECT_EQ(run["counts"], reference_counts);
  }
}

// ---------------------------------------------------------------------------
// Array outputs of a one-schedule run.
// ---------------------------------------------------------------------------

class SampleArrays : public testing::Test {
 protected:
  static constexpr std::size_t kSamples = 2000;
  static constexpr std::size_t kPaths = 4;
  static constexpr std::size_t kPoints = 9;

  static void SetUpTestSuite() {
    directory_ = std::make_unique<TempDirectory>();
    result_ = std::make_unique<CommandResult>(run_fmg(
        {"sample", "--schedule", "linear", "-n", std::to_string(kSamples), "--seed", "11",
         "--quiet", "--json", "--summary", directory_->file("summary.json"),
         "--endpoints-out", directory_->file("endpoints.npy"), "--labels-out",
         directory_->file("labels.npy"), "--base-out", directory_->file("base.npy"),
         "--trajectories", std::to_string(kPaths), "--trajectory-points",
         std::to_string(kPoints), "--trajectories-out",
         directory_->file("trajectories.npy")}));
  }

  static void TearDownTestSuite() {
    result_.reset();
    directory_.reset();
  }

  void SetUp() override { ASSERT_EQ(result_->exit_status, 0) << describe_result(*result_); }

  static NpyArray array(const std::string& name) {
    return read_npy(directory_->file(name));
  }

  static json summary() { return json::parse(read_bytes(directory_->file("summary.json"))); }

  static std::unique_ptr<TempDirectory> directory_;
  static std::unique_ptr<CommandResult> result_;
};

std::unique_ptr<TempDirectory> SampleArrays::directory_;
std::unique_ptr<CommandResult> SampleArrays::result_;

TEST_F(SampleArrays, WritesExactlyTheRequestedFiles) {
  const std::set<std::string> expected = {"summary.json", "endpoints.npy", "labels.npy",
                                          "base.npy", "trajectories.npy"};

  EXPECT_EQ(directory_entries(directory_->path()), expected);
}

TEST_F(SampleArrays, EndpointsAreFloat64NByD) {
  const NpyArray endpoints = array("endpoints.npy");

  EXPECT_EQ(endpoints.type, NpyType::float64);
  EXPECT_EQ(endpoints.shape, (std::vector<std::size_t>{kSamples, kDim}));
}

TEST_F(SampleArrays, LabelsAreInt32N) {
  const NpyArray labels = array("labels.npy");

  EXPECT_EQ(labels.type, NpyType::int32);
  EXPECT_EQ(labels.shape, (std::vector<std::size_t>{kSamples}));
}

TEST_F(SampleArrays, BaseIsFloat64NByD) {
  const NpyArray base = array("base.npy");

  EXPECT_EQ(base.type, NpyType::float64);
  EXPECT_EQ(base.shape, (std::vector<std::size_t>{kSamples, kDim}));
}

TEST_F(SampleArrays, TrajectoriesAreFloat64PathsByPointsByD) {
  const NpyArray trajectories = array("trajectories.npy");

  EXPECT_EQ(trajectories.type, NpyType::float64);
  EXPECT_EQ(trajectories.shape, (std::vector<std::size_t>{kPaths, kPoints, kDim}));
}

TEST_F(SampleArrays, LabelsMatchSummaryCounts) {
  const std::vector<std::int32_t> labels = int32_values(array("labels.npy"));
  std::vector<std::uint64_t> counts(kWeights.size(), 0);
  for (const std::int32_t label : labels) {
    ASSERT_GE(label, 0);
    ASSERT_LT(label, static_cast<std::int32_t>(kWeights.size()));
    ++counts[static_cast<std::size_t>(label)];
  }

  EXPECT_EQ(summary()["runs"][0]["counts"].get<std::vector<std::uint64_t>>(), counts);
}

// At t_end = 1 - eps an endpoint is a(t_end) x0 + b(t_end) mu plus terms of
// order eps, so it lies within a few eps of its labelled atom.
TEST_F(SampleArrays, EndpointsLieNearTheirLabelledAtoms) {
  const std::vector<double> endpoints = float_values(array("endpoints.npy"));
  const std::vector<std::int32_t> labels = int32_values(array("labels.npy"));
  ASSERT_EQ(endpoints.size(), labels.size() * kDim);
  double max_distance = 0.0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::size_t atom = static_cast<std::size_t>(labels[i]);
    const double dx = endpoints[i * kDim] - kAtoms[atom * kDim];
    const double dy = endpoints[i * kDim + 1] - kAtoms[atom * kDim + 1];
    max_distance = std::max(max_distance, std::hypot(dx, dy));
  }

  EXPECT_LT(max_distance, 0.02);
}

TEST_F(SampleArrays, BaseLooksStandardNormal) {
  const std::vector<double> base = float_values(array("base.npy"));
  for (int j = 0; j < kDim; ++j) {
    SCOPED_TRACE(j);
    double sum = 0.0;
    double sum_of_squares = 0.0;
    for (std::size_t i = 0; i < kSamples; ++i) {
      sum += base[i * kDim + j];
      sum_of_squares += base[i * kDim + j] * base[i * kDim + j];
    }
    const double mean = sum / kSamples;
    const double variance = sum_of_squares / kSamples - mean * mean;

    // Five standard errors: 1/sqrt(N) for the mean, sqrt(2/N) for the variance.
    EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(double(kSamples)));
    EXPECT_NEAR(variance, 1.0, 5.0 * std::sqrt(2.0 / kSamples));
  }
}

TEST_F(SampleArrays, TrajectoriesStartAtBase) {
  const std::vector<double> trajectories = float_values(array("trajectories.npy"));
  const std::vector<double> base = float_values(array("base.npy"));
  for (std::size_t i = 0; i < kPaths; ++i) {
    for (int j = 0; j < kDim; ++j) {
      SCOPED_TRACE(testing::Message() << "path " << i << ", coordinate " << j);
      EXPECT_EQ(trajectories[(i * kPoints) * kDim + j], base[i * kDim + j]);
    }
  }
}

TEST_F(SampleArrays, TrajectoriesEndAtEndpoints) {
  const std::vector<double> trajectories = float_values(array("trajectories.npy"));
  const std::vector<double> endpoints = float_values(array("endpoints.npy"));
  for (std::size_t i = 0; i < kPaths; ++i) {
    for (int j = 0; j < kDim; ++j) {
      SCOPED_TRACE(testing::Message() << "path " << i << ", coordinate " << j);
      // Trajectories come from the per-sample path and endpoints from the
      // SIMD lane engine, whose exp differs in the last bits.
      EXPECT_NEAR(trajectories[(i * kPoints + kPoints - 1) * kDim + j],
                  endpoints[i * kDim + j], 1e-9);
    }
  }
}

TEST_F(SampleArrays, SummaryListsTrajectoryTimes) {
  const json trajectories = summary()["runs"][0]["trajectories"];
  const auto times = trajectories["times"].get<std::vector<double>>();

  EXPECT_EQ(trajectories["count"], kPaths);
  EXPECT_EQ(trajectories["file"], directory_->file("trajectories.npy"));
  ASSERT_EQ(times.size(), kPoints);
  EXPECT_EQ(times.front(), 0.0);
  EXPECT_EQ(times.back(), 1.0 - 1e-3);
}

TEST_F(SampleArrays, SummaryListsFiles) {
  const json files = summary()["files"];

  EXPECT_EQ(files["endpoints_linear"], directory_->file("endpoints.npy"));
  EXPECT_EQ(files["labels_linear"], directory_->file("labels.npy"));
  EXPECT_EQ(files["base_samples"], directory_->file("base.npy"));
  EXPECT_EQ(files["trajectories_linear"], directory_->file("trajectories.npy"));
}

TEST_F(SampleArrays, StdoutMatchesSummaryFile) {
  EXPECT_EQ(json::parse(result_->standard_output), summary());
}

// ---------------------------------------------------------------------------
// File names with several schedules, starting points, float precision and
// reproducibility.
// ---------------------------------------------------------------------------

TEST(SampleFileNames, AppendScheduleNames) {
  const TempDirectory directory;

  const CommandResult result = run_fmg(
      {"sample", "-n", "500", "--quiet", "--summary", directory.file("summary.json"),
       "--endpoints-out", directory.file("end.npy"), "--labels-out",
       directory.file("labels.npy"), "--base-out", directory.file("base.npy"),
       "--trajectories", "2", "--trajectories-out", directory.file("paths.npy")});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  std::set<std::string> expected = {"summary.json", "base.npy"};
  for (const std::string& schedule : kScheduleNames) {
    expected.insert("end_" + schedule + ".npy");
    expected.insert("labels_" + schedule + ".npy");
    expected.insert("paths_" + schedule + ".npy");
  }
  EXPECT_EQ(directory_entries(directory.path()), expected);
}

TEST(SampleFileNames, TaggedLabelsMatchTheirRun) {
  const TempDirectory directory;

  const CommandResult result =
      run_fmg({"sample", "-n", "500", "--quiet", "--summary", directory.file("summary.json"),
               "--labels-out", directory.file("labels.npy")});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  const json summary = json::parse(read_bytes(directory.file("summary.json")));
  ASSERT_EQ(summary["runs"].size(), kScheduleNames.size());
  for (std::size_t s = 0; s < kScheduleNames.size(); ++s) {
    SCOPED_TRACE(kScheduleNames[s]);
    const std::vector<std::int32_t> labels =
        int32_values(read_npy(directory.file("labels_" + kScheduleNames[s] + ".npy")));
    std::vector<std::uint64_t> counts(kWeights.size(), 0);
    for (const std::int32_t label : labels) {
      ASSERT_GE(label, 0);
      ASSERT_LT(label, static_cast<std::int32_t>(kWeights.size()));
      ++counts[static_cast<std::size_t>(label)];
    }
    EXPECT_EQ(summary["runs"][s]["counts"].get<std::vector<std::uint64_t>>(), counts);
  }
}

// Starting points on the ray through each atom, at 0.5, 1, 1.5 and 3 times
// the atom, flow to that atom under every schedule.
TEST(SampleStarts, StartsOnAtomRaysReachThoseAtoms) {
  const TempDirectory directory;
  const std::vector<double> scales = {0.5, 1.0, 1.5, 3.0};
  std::vector<double> starts;
  std::vector<std::int32_t> expected_labels;
  for (const double scale : scales) {
    for (std::size_t k = 0; k < kWeights.size(); ++k) {
      starts.push_back(scale * kAtoms[k * kDim]);
      starts.push_back(scale * kAtoms[k * kDim + 1]);
      expected_labels.push_back(static_cast<std::int32_t>(k));
    }
  }
  const std::size_t rows = expected_labels.size();
  write_bytes(directory.file("starts.npy"), npy_bytes({rows, kDim}, starts));

  const CommandResult result = run_fmg(
      {"sample", "--starts", directory.file("starts.npy"), "--quiet", "--summary",
       directory.file("summary.json"), "--labels-out", directory.file("labels.npy"),
       "--base-out", directory.file("base.npy")});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  for (const std::string& schedule : kScheduleNames) {
    SCOPED_TRACE(schedule);
    EXPECT_EQ(int32_values(read_npy(directory.file("labels_" + schedule + ".npy"))),
              expected_labels);
  }
  EXPECT_EQ(float_values(read_npy(directory.file("base.npy"))), starts);
  const json summary = json::parse(read_bytes(directory.file("summary.json")));
  EXPECT_EQ(summary["options"]["samples"], rows);
  EXPECT_EQ(summary["options"]["starts"], directory.file("starts.npy"));
}

TEST(SampleFloat, WritesFloat32Arrays) {
  const TempDirectory directory;

  const CommandResult result = run_fmg(
      {"sample", "--schedule", "cosine", "--precision", "float", "-n", "500", "--quiet",
       "--summary", directory.file("summary.json"), "--endpoints-out",
       directory.file("endpoints.npy"), "--base-out", directory.file("base.npy"),
       "--labels-out", directory.file("labels.npy")});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  EXPECT_EQ(read_npy(directory.file("endpoints.npy")).type, NpyType::float32);
  EXPECT_EQ(read_npy(directory.file("base.npy")).type, NpyType::float32);
  EXPECT_EQ(read_npy(directory.file("labels.npy")).type, NpyType::int32);
  const json summary = json::parse(read_bytes(directory.file("summary.json")));
  EXPECT_EQ(summary["runs"][0]["precision"], "float");
  EXPECT_EQ(summary["runs"][0]["failures"]["max_steps_reached"], 0);
  EXPECT_EQ(summary["runs"][0]["failures"]["non_finite_state"], 0);
}

// ---------------------------------------------------------------------------
// Warnings: in the summary's "warnings" list and on stderr.
// ---------------------------------------------------------------------------

/// Returns the number of failed samples in a summary's run.
std::uint64_t failed_samples(const json& run) {
  return run["failures"]["max_steps_reached"].get<std::uint64_t>() +
         run["failures"]["non_finite_state"].get<std::uint64_t>();
}

TEST(SampleWarnings, PartialFailureIsReported) {
  const CommandResult result =
      run_fmg({"sample", "-q", "-n", "1000", "--schedule", "linear", "--max-steps", "12",
               "--backend", "cpu", "--json"});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  const json summary = json::parse(result.standard_output);
  const std::uint64_t failed = failed_samples(summary["runs"][0]);
  ASSERT_GT(failed, 0u);
  ASSERT_LT(failed, 1000u);
  ASSERT_EQ(summary["warnings"].size(), 1u);
  const std::string warning = summary["warnings"][0].get<std::string>();
  EXPECT_THAT(warning, HasSubstr(std::to_string(failed) + " of 1000 samples failed"));
  EXPECT_THAT(warning, HasSubstr("linear schedule"));
  EXPECT_THAT(warning, HasSubstr("max_steps_reached"));
  EXPECT_THAT(warning, HasSubstr("may be biased"));
  EXPECT_THAT(warning, HasSubstr("--max-steps (now 12)"));
  EXPECT_THAT(result.standard_error, HasSubstr("fmg: warning: " + warning));
}

TEST(SampleWarnings, TotalFailureIsReported) {
  const CommandResult result =
      run_fmg({"sample", "-q", "-n", "200", "--schedule", "cosine", "--max-steps", "1",
               "--backend", "cpu", "--json"});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  const json summary = json::parse(result.standard_output);
  ASSERT_EQ(failed_samples(summary["runs"][0]), 200u);
  ASSERT_EQ(summary["warnings"].size(), 1u);
  const std::string warning = summary["warnings"][0].get<std::string>();
  EXPECT_THAT(warning, HasSubstr("every sample failed under the cosine schedule"));
  EXPECT_THAT(warning, HasSubstr("200 max_steps_reached"));
  EXPECT_THAT(warning, HasSubstr("--max-steps (now 1)"));
  EXPECT_TRUE(summary["runs"][0]["fractions"][0].is_null());
}

TEST(SampleWarnings, NoWarningWithoutFailure) {
  const CommandResult result =
      run_fmg({"sample", "-q", "-n", "500", "--schedule", "linear", "--backend", "cpu",
               "--json"});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  const json summary = json::parse(result.standard_output);
  EXPECT_EQ(failed_samples(summary["runs"][0]), 0u);
  EXPECT_THAT(summary["warnings"], IsEmpty());
  EXPECT_THAT(result.standard_error, Not(HasSubstr("warning")));
}

/// Runs the mixture whose atoms 0 and 1 differ by 1e-9, below float
/// resolution at 1, in `precision` and returns the result.
CommandResult run_nearly_coinciding_atoms(const TempDirectory& directory,
                                          const std::string& precision) {
  const std::string path = directory.file("mixture.json");
  write_bytes(path, "{\"atoms\": [[1, 0], [1.000000001, 0], [-1, 0]], "
                    "\"weights\": [0.3, 0.3, 0.4]}\n");
  return run_fmg({"sample", "-q", "-n", "500", "--schedule", "linear", "--backend", "cpu",
                  "--precision", precision, "--mixture", path, "--json"});
}

TEST(SampleWarnings, AtomsCoincidingInFloatAreReported) {
  const TempDirectory directory;

  const CommandResult result = run_nearly_coinciding_atoms(directory, "float");

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  const json summary = json::parse(result.standard_output);
  // The first warning is the relative tolerance's (rtol 1e-6 cannot resolve
  // atoms 1e-9 apart either); the second is this one.
  ASSERT_EQ(summary["warnings"].size(), 2u);
  EXPECT_THAT(summary["warnings"][0].get<std::string>(), HasSubstr("lower --rtol"));
  const std::string warning = summary["warnings"][1].get<std::string>();
  EXPECT_THAT(warning, HasSubstr("atoms 0 and 1 coincide in float precision"));
  EXPECT_THAT(result.standard_error, HasSubstr("fmg: warning: " + warning));
  EXPECT_EQ(summary["runs"][0]["counts"][1], 0);
}

// In double the atoms 1e-9 apart do not coincide, but they lie far closer
// than a(t_end) = 1e-3, so they draw the close-atom warning instead.
TEST(SampleWarnings, AtomsDistinctInDoubleAreReportedAsClose) {
  const TempDirectory directory;

  const CommandResult result = run_nearly_coinciding_atoms(directory, "double");

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  const json summary = json::parse(result.standard_output);
  ASSERT_EQ(summary["warnings"].size(), 2u);
  EXPECT_THAT(summary["warnings"][0].get<std::string>(), HasSubstr("lower --rtol"));
  const std::string warning = summary["warnings"][1].get<std::string>();
  EXPECT_THAT(warning, HasSubstr("atoms 0 and 1 (1e-09 apart) are too close"));
  EXPECT_THAT(warning, Not(HasSubstr("coincide")));
}

// Atoms 3e9 apart split the samples near t = 4e-5 under the cosine
// schedule, long before the first of 100 fixed steps ends.
TEST(SampleWarnings, FixedStepLongerThanSplitIsReported) {
  const TempDirectory directory;
  const std::string path = directory.file("far.json");
  write_bytes(path, "{\"atoms\": [[0, 3e9], [1, 1]], \"weights\": [0.5, 0.5]}\n");

  const CommandResult result =
      run_fmg({"sample", "-q", "-n", "200", "--schedule", "cosine", "--method", "rk4",
               "--backend", "cpu", "--mixture", path, "--json"});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  const json summary = json::parse(result.standard_output);
  ASSERT_EQ(summary["warnings"].size(), 1u);
  const std::string warning = summary["warnings"][0].get<std::string>();
  EXPECT_THAT(warning, HasSubstr("cosine schedule the atoms split the samples"));
  EXPECT_THAT(warning, HasSubstr("--method dopri5"));
}

TEST(SampleWarnings, DefaultFixedStepsOnExampleAreNotReported) {
  const CommandResult result =
      run_fmg({"sample", "-q", "-n", "200", "--method", "rk4", "--backend", "cpu", "--json"});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  EXPECT_THAT(json::parse(result.standard_output)["warnings"], IsEmpty());
}

/// Runs fmg sample -n 500 on the CPU with `mixture` (JSON text) and
/// `options`, and returns the summary's warnings.
std::vector<std::string> sample_warnings(const std::string& mixture,
                                         const std::vector<std::string>& options) {
  const TempDirectory directory;
  const std::string path = directory.file("mixture.json");
  write_bytes(path, mixture);
  std::vector<std::string> arguments = {"sample", "-q", "-n", "500", "--backend", "cpu",
                                        "--mixture", path, "--json"};
  arguments.insert(arguments.end(), options.begin(), options.end());

  const CommandResult result = run_fmg(arguments);

  EXPECT_EQ(result.exit_status, 0) << describe_result(result);
  if (result.exit_status != 0) return {};
  std::vector<std::string> warnings =
      json::parse(result.standard_output)["warnings"].get<std::vector<std::string>>();
  for (const std::string& warning : warnings) {
    EXPECT_THAT(result.standard_error, HasSubstr("fmg: warning: " + warning));
  }
  return warnings;
}

const std::string kTwoAtoms = mixture_text("[[0, 0], [1, 1]]", "[0.5, 0.5]");

// Three atoms 0.5 apart near (-5e4, 3e4) and one at the origin: no shift
// helps both groups, and rtol 1e-6 of |x| = 5.8e4 is 0.058, a tenth of
// their distance; the cosine schedule sent 60% of 1e5 samples astray.
TEST(SampleWarnings, LooseRelativeToleranceIsReported) {
  const std::string mixture = mixture_text(
      "[[-5e4, 3e4], [-5e4, 30000.5], [-49999.5, 3e4], [0, 0]]", "[0.4, 0.3, 0.2, 0.1]");
  const std::vector<std::string> warnings = sample_warnings(mixture, {"--schedule", "linear"});

  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("atoms 0 and 1 are 0.5 apart"));
  EXPECT_THAT(warnings[0], HasSubstr("lower --rtol to about 8.6e-10"));
}

TEST(SampleWarnings, TightRelativeToleranceIsNotReported) {
  const std::string mixture = mixture_text("[[2.4, 0], [-1.4, 2], [-1.4, -2]]",
                                           "[0.45, 0.3, 0.25]");
  EXPECT_THAT(sample_warnings(mixture, {"--schedule", "linear"}), IsEmpty());
}

// Atoms 1e20 apart split the samples near t = 1e-20: the steps needed do
// not fit --steps, so only Dormand-Prince is suggested.
TEST(SampleWarnings, FixedStepsBeyondTheLimitSuggestDopri5) {
  const std::vector<std::string> warnings =
      sample_warnings(mixture_text("[[1e20, 0], [0, 1]]", "[0.5, 0.5]"),
                      {"--schedule", "linear", "--method", "rk4"});

  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("use --method dopri5 (no --steps value is large enough)"));
}

// In float 1e7 and 1e7 + 0.5 are distinct, and the far mixture is shifted
// to about -0.25 and 0.25 before it runs, so no coincidence is reported.
TEST(SampleWarnings, ShiftedFloatAtomsDoNotCoincide) {
  const std::vector<std::string> warnings =
      sample_warnings(mixture_text("[[1e7, 0], [10000000.5, 0]]", "[0.6, 0.4]"),
                      {"--schedule", "linear", "--precision", "float"});

  EXPECT_THAT(warnings, IsEmpty());
}

// Atoms 1e-4 apart: their endpoints spread by a(t_end) = eps = 1e-3 under
// the linear schedule, so the labels cannot tell them apart. Under the
// cosine schedule a(t_end) = sin^2(pi eps / 2) = 2.5e-6, far below 1e-4.
TEST(SampleWarnings, CloseAtomsAreReported) {
  const std::vector<std::string> warnings =
      sample_warnings(mixture_text("[[0, 0], [1e-4, 0]]", "[0.5, 0.5]"),
                      {"--schedule", "all", "--eps", "1e-3"});

  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_THAT(warnings[0], HasSubstr("under the linear schedule atoms 0 and 1 (0.0001 apart)"));
  EXPECT_THAT(warnings[0], HasSubstr("a(t_end) = 0.001"));
  EXPECT_THAT(warnings[0], HasSubstr("lower --eps (now 0.001)"));
  EXPECT_THAT(warnings[1], HasSubstr("under the variance-preserving schedule atoms 0 and 1"));
}

TEST(SampleWarnings, CloseAtomsWithSmallerEpsAreNotReported) {
  const std::vector<std::string> warnings =
      sample_warnings(mixture_text("[[0, 0], [1e-4, 0]]", "[0.5, 0.5]"),
                      {"--schedule", "linear", "--eps", "1e-6"});

  EXPECT_THAT(warnings, IsEmpty());
}

// Endpoints gather around b(t_end) mu = (1 - eps) mu, 1 away from atoms
// near (1000, 0). Labels compare with b(t_end) mu, so atoms 100 a(t_end)
// apart are distinguished wherever they lie.
TEST(SampleWarnings, AtomsFarFromOriginAreNotReported) {
  const std::vector<std::string> warnings =
      sample_warnings(mixture_text("[[1000, 0], [1000.1, 0]]", "[0.5, 0.5]"),
                      {"--schedule", "linear"});

  EXPECT_THAT(warnings, IsEmpty());
}

TEST(SampleWarnings, StepsWithDopri5AreReported) {
  const std::vector<std::string> warnings =
      sample_warnings(kTwoAtoms, {"--schedule", "linear", "--steps", "50"});

  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("--steps has no effect with --method dopri5"));
}

TEST(SampleWarnings, DefaultValuesGivenExplicitlyAreNotReported) {
  EXPECT_THAT(sample_warnings(kTwoAtoms, {"--schedule", "linear", "--steps", "100"}),
              IsEmpty());
  EXPECT_THAT(sample_warnings(kTwoAtoms, {"--schedule", "linear", "--method", "rk4",
                                          "--rtol", "1e-6", "--atol", "1e-9",
                                          "--initial-step", "0", "--max-steps", "1e5"}),
              IsEmpty());
}

TEST(SampleWarnings, DopriOptionsWithFixedStepsAreReported) {
  const std::vector<std::string> warnings = sample_warnings(
      kTwoAtoms, {"--schedule", "linear", "--method", "rk4", "--rtol", "1e-3", "--atol",
                  "1e-9", "--initial-step", "0.01", "--max-steps", "1000"});

  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("--rtol, --initial-step and --max-steps have no effect "
                                     "with --method rk4"));
}

TEST(SampleWarnings, NoSimdWithMatrixPathIsReported) {
  const std::vector<std::string> warnings = sample_warnings(
      kTwoAtoms, {"--schedule", "linear", "--no-simd", "--velocity-path", "matrix"});

  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("--no-simd has no effect here"));
  EXPECT_THAT(warnings[0], HasSubstr("cpu backend's matrix path in d = 2"));
}

TEST(SampleWarnings, NoSimdOnDirectPathIsNotReported) {
  EXPECT_THAT(sample_warnings(kTwoAtoms, {"--schedule", "linear", "--no-simd",
                                          "--velocity-path", "direct"}),
              IsEmpty());
}

/// Runs a one-schedule sample with `options` and returns the bytes of its
/// endpoint file.
std::string endpoint_bytes(const TempDirectory& directory, const std::string& name,
                           const std::vector<std::string>& options) {
  std::vector<std::string> arguments = {"sample", "--schedule", "variance-preserving",
                                        "-n", "2000", "--quiet", "--endpoints-out",
                                        directory.file(name)};
  arguments.insert(arguments.end(), options.begin(), options.end());
  const CommandResult result = run_fmg(arguments);
  EXPECT_EQ(result.exit_status, 0) << describe_result(result);
  return result.exit_status == 0 ? read_bytes(directory.file(name)) : std::string();
}

TEST(SampleReproducibility, SameEndpointsAcrossThreadCounts) {
  const TempDirectory directory;

  const std::string one_thread =
      endpoint_bytes(directory, "one.npy", {"--seed", "3", "--threads", "1"});
  const std::string two_threads =
      endpoint_bytes(directory, "two.npy", {"--seed", "3", "--threads", "2"});

  ASSERT_FALSE(one_thread.empty());
  EXPECT_TRUE(one_thread == two_threads) << "the endpoint files differ";
}

TEST(SampleReproducibility, SameEndpointsAcrossChunkSizes) {
  const TempDirectory directory;

  const std::string chunks_of_7 =
      endpoint_bytes(directory, "small.npy", {"--seed", "3", "--chunk-size", "7"});
  const std::string default_chunks = endpoint_bytes(directory, "default.npy", {"--seed", "3"});

  ASSERT_FALSE(chunks_of_7.empty());
  EXPECT_TRUE(chunks_of_7 == default_chunks) << "the endpoint files differ";
}

TEST(SampleReproducibility, OtherSeedGivesOtherEndpoints) {
  const TempDirectory directory;

  const std::string seed_3 = endpoint_bytes(directory, "three.npy", {"--seed", "3"});
  const std::string seed_4 = endpoint_bytes(directory, "four.npy", {"--seed", "4"});

  ASSERT_FALSE(seed_3.empty());
  EXPECT_FALSE(seed_3 == seed_4) << "two seeds gave the same endpoints";
}

// ---------------------------------------------------------------------------
// fmg field.
// ---------------------------------------------------------------------------

class FieldCommand : public testing::Test {
 protected:
  static constexpr std::size_t kCount = 3;
  const std::vector<double> points_ = {0.0, 0.0, 1.0, -2.0, -0.5, 3.0};

  void SetUp() override {
    write_bytes(directory_.file("points.npy"), npy_bytes({kCount, kDim}, points_));
  }

  /// Runs fmg field at `times` with `options` and returns the JSON it
  /// writes to a file.
  json field_json(const std::string& times, const std::vector<std::string>& options = {}) {
    std::vector<std::string> arguments = {"field", "--points", directory_.file("points.npy"),
                                          "--times", times, "--json",
                                          directory_.file("field.json")};
    arguments.insert(arguments.end(), options.begin(), options.end());
    const CommandResult result = run_fmg(arguments);
    EXPECT_EQ(result.exit_status, 0) << describe_result(result);
    if (result.exit_status != 0) return json();
    return json::parse(read_bytes(directory_.file("field.json")));
  }

  TempDirectory directory_;
};

// At t = 0 the responsibilities are the weights, so for the linear schedule
// (a' = -1, b' = 1, b = 0) the velocity is -x + m with m = sum_k w_k mu_k.
TEST_F(FieldCommand, LinearVelocityAtZeroIsMeanMinusPoint) {
  const json field = field_json("0");
  const std::vector<double> mean = mixture_mean();

  ASSERT_EQ(field["values"].size(), 1u);
  const json& velocity = field["values"][0]["velocity"];
  ASSERT_EQ(velocity.size(), kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    for (int j = 0; j < kDim; ++j) {
      SCOPED_TRACE(testing::Message() << "point " << i << ", coordinate " << j);
      EXPECT_NEAR(velocity[i][j].get<double>(), mean[j] - points_[i * kDim + j], 1e-14);
    }
  }
}

// For the variance-preserving schedule a'(0) = 0 and b'(0) = pi / 2, so the
// velocity at t = 0 is (pi / 2) m for every point.
TEST_F(FieldCommand, VpVelocityAtZeroIsScaledMean) {
  const json field = field_json("0", {"--schedule", "vp"});
  const std::vector<double> mean = mixture_mean();

  ASSERT_EQ(field["values"].size(), 1u);
  const json& velocity = field["values"][0]["velocity"];
  ASSERT_EQ(velocity.size(), kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    for (int j = 0; j < kDim; ++j) {
      SCOPED_TRACE(testing::Message() << "point " << i << ", coordinate " << j);
      EXPECT_NEAR(velocity[i][j].get<double>(), kPi / 2 * mean[j], 1e-14);
    }
  }
}

TEST_F(FieldCommand, LogDensityAtZeroIsStandardNormal) {
  const json field = field_json("0");

  ASSERT_EQ(field["values"].size(), 1u);
  const json& log_density = field["values"][0]["log_density"];
  ASSERT_EQ(log_density.size(), kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    SCOPED_TRACE(i);
    const double x = points_[i * kDim];
    const double y = points_[i * kDim + 1];
    const double expected = -0.5 * (x * x + y * y) - std::log(2.0 * kPi);
    EXPECT_NEAR(log_density[i].get<double>(), expected, 1e-14);
  }
}

TEST_F(FieldCommand, LogResponsibilitiesAtZeroAreLogWeights) {
  const json field = field_json("0");

  ASSERT_EQ(field["values"].size(), 1u);
  const json& log_gamma = field["values"][0]["log_responsibilities"];
  ASSERT_EQ(log_gamma.size(), kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    for (std::size_t k = 0; k < kWeights.size(); ++k) {
      SCOPED_TRACE(testing::Message() << "point " << i << ", atom " << k);
      EXPECT_NEAR(log_gamma[i][k].get<double>(), std::log(kWeights[k]), 1e-14);
    }
  }
}

TEST_F(FieldCommand, CommaListAndRangeGiveEachTime) {
  const json field = field_json("0.25,0.5,0:0.75:4");

  EXPECT_EQ(field["times"], json::array({0.25, 0.5, 0.0, 0.25, 0.5, 0.75}));
  EXPECT_EQ(field["values"].size(), 6u);
}

// Linear schedule at t = 1/2: a = b = 1/2, so log gamma_k = log w_k -
// 2 |x - mu_k / 2|^2 - log Z, v = 2 (m - x) and log rho = log Z - log(2 pi a^2).
TEST_F(FieldCommand, LinearValuesAtHalfMatchClosedForm) {
  const json field = field_json("0.5");

  ASSERT_EQ(field["values"].size(), 1u);
  const json& values = field["values"][0];
  for (std::size_t i = 0; i < kCount; ++i) {
    SCOPED_TRACE(i);
    std::vector<double> log_terms(kWeights.size());
    for (std::size_t k = 0; k < kWeights.size(); ++k) {
      const double dx = points_[i * kDim] - 0.5 * kAtoms[k * kDim];
      const double dy = points_[i * kDim + 1] - 0.5 * kAtoms[k * kDim + 1];
      log_terms[k] = std::log(kWeights[k]) - 2.0 * (dx * dx + dy * dy);
    }
    const double largest = *std::max_element(log_terms.begin(), log_terms.end());
    double sum = 0.0;
    for (const double term : log_terms) sum += std::exp(term - largest);
    const double log_z = largest + std::log(sum);
    std::vector<double> mean(kDim, 0.0);
    for (std::size_t k = 0; k < kWeights.size(); ++k) {
      const double gamma = std::exp(log_terms[k] - log_z);
      for (int j = 0; j < kDim; ++j) mean[j] += gamma * kAtoms[k * kDim + j];
      EXPECT_NEAR(values["log_responsibilities"][i][k].get<double>(), log_terms[k] - log_z,
                  1e-12);
    }
    EXPECT_NEAR(values["log_density"][i].get<double>(), log_z - std::log(2.0 * kPi * 0.25),
                1e-12);
    for (int j = 0; j < kDim; ++j) {
      EXPECT_NEAR(values["velocity"][i][j].get<double>(),
                  2.0 * (mean[j] - points_[i * kDim + j]), 1e-12);
    }
  }
}

TEST_F(FieldCommand, ArraysMatchJson) {
  const json field = field_json(
      "0,0.5", {"--velocity-out", directory_.file("velocity.npy"), "--log-density-out",
                directory_.file("log_density.npy"), "--responsibilities-out",
                directory_.file("responsibilities.npy")});
  const NpyArray velocity = read_npy(directory_.file("velocity.npy"));
  const NpyArray log_density = read_npy(directory_.file("log_density.npy"));
  const NpyArray log_gamma = read_npy(directory_.file("responsibilities.npy"));

  ASSERT_EQ(field["values"].size(), 2u);
  ASSERT_EQ(velocity.shape, (std::vector<std::size_t>{2, kCount, kDim}));
  ASSERT_EQ(log_density.shape, (std::vector<std::size_t>{2, kCount}));
  ASSERT_EQ(log_gamma.shape, (std::vector<std::size_t>{2, kCount, kWeights.size()}));
  const std::vector<double> velocities = float_values(velocity);
  const std::vector<double> densities = float_values(log_density);
  const std::vector<double> gammas = float_values(log_gamma);
  for (std::size_t t = 0; t < 2; ++t) {
    const json& values = field["values"][t];
    for (std::size_t i = 0; i < kCount; ++i) {
      SCOPED_TRACE(testing::Message() << "time " << t << ", point " << i);
      EXPECT_EQ(densities[t * kCount + i], values["log_density"][i].get<double>());
      for (int j = 0; j < kDim; ++j) {
        EXPECT_EQ(velocities[(t * kCount + i) * kDim + j],
                  values["velocity"][i][j].get<double>());
      }
      for (std::size_t k = 0; k < kWeights.size(); ++k) {
        EXPECT_EQ(gammas[(t * kCount + i) * kWeights.size() + k],
                  values["log_responsibilities"][i][k].get<double>());
      }
    }
  }
}

TEST_F(FieldCommand, PrintsJsonToStdoutByDefault) {
  const CommandResult result = run_fmg(
      {"field", "--points", directory_.file("points.npy"), "--times", "0.25"});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  const json field = json::parse(result.standard_output);
  EXPECT_EQ(field["command"], "field");
  EXPECT_EQ(field["schedule"], "linear");
  EXPECT_EQ(field["points"], kCount);
  EXPECT_EQ(field["times"], json::array({0.25}));
}

TEST_F(FieldCommand, PrintsNothingWhenOnlyArraysRequested) {
  const CommandResult result =
      run_fmg({"field", "--points", directory_.file("points.npy"), "--times", "0.25",
               "--velocity-out", directory_.file("velocity.npy")});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  EXPECT_THAT(result.standard_output, IsEmpty());
  EXPECT_EQ(read_npy(directory_.file("velocity.npy")).shape,
            (std::vector<std::size_t>{1, kCount, kDim}));
}

// ---------------------------------------------------------------------------
// The main job: fmg sample with no options (slow: N = 1e6, three schedules).
// ---------------------------------------------------------------------------

/// One atom row of the table that fmg sample prints.
struct TableRow {
  std::string schedule;
  std::string weight;
  double fraction = 0.0;
  double z_score = 0.0;
};

std::vector<TableRow> parse_table(const std::string& text) {
  // schedule (first row only), atom, weight, fraction, std.err, z
  const std::regex row_pattern(
      R"(^(\S*)\s+(\d+)\s+(\d+\.\d{4})\s+(\d+\.\d{6})\s+(\d+\.\d{6})\s+(-?\d+\.\d{2})$)");
  std::vector<TableRow> rows;
  std::istringstream lines(text);
  std::string line;
  std::string schedule;
  while (std::getline(lines, line)) {
    std::smatch match;
    if (!std::regex_match(line, match, row_pattern)) continue;
    if (!match[1].str().empty()) schedule = match[1].str();
    rows.push_back({schedule, match[3].str(), std::stod(match[4].str()),
                    std::stod(match[6].str())});
  }
  return rows;
}

TEST(SampleDefaultJob, PrintsTableForAllSchedules) {
  const CommandResult result = run_fmg({"sample"});

  ASSERT_EQ(result.exit_status, 0) << describe_result(result);
  EXPECT_THAT(result.standard_output, HasSubstr("N = 1000000"));
  EXPECT_THAT(result.standard_output, HasSubstr("built-in example"));
  const std::vector<TableRow> rows = parse_table(result.standard_output);
  ASSERT_EQ(rows.size(), kScheduleNames.size() * kWeights.size()) << result.standard_output;
  const std::vector<std::string> weights = {"0.4500", "0.3000", "0.2500"};
  for (std::size_t s = 0; s < kScheduleNames.size(); ++s) {
    for (std::size_t k = 0; k < kWeights.size(); ++k) {
      SCOPED_TRACE(testing::Message() << kScheduleNames[s] << ", atom " << k);
      const TableRow& row = rows[s * kWeights.size() + k];
      EXPECT_EQ(row.schedule, kScheduleNames[s]);
      EXPECT_EQ(row.weight, weights[k]);
      EXPECT_LT(std::fabs(row.z_score), 5.0);
    }
  }
  // Progress lines ("fmg: linear:  50.0% (...)") belong on stderr only.
  EXPECT_THAT(result.standard_output, Not(HasSubstr("% (")));
  const std::regex progress_line(R"(^fmg: [a-z-]+: +\d+\.\d% \(.*\)$)");
  std::istringstream errors(result.standard_error);
  std::string line;
  while (std::getline(errors, line)) {
    EXPECT_TRUE(std::regex_match(line, progress_line)) << line;
  }
}

}  // namespace
}  // namespace fmg::cli_test

namespace fmg::cli_test {
namespace {

TEST(SignalCleanup, TerminatedRunLeavesNoTemporaryFile) {
  const TempDirectory directory;
  const std::string output = (directory.path() / "endpoints.npy").string();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::execl(FMG_BINARY, FMG_BINARY, "sample", "-q", "--schedule", "linear", "-n", "1e8",
            "--chunk-size", "100000", "--endpoints-out", output.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Waits until the run has created its temporary output, then stops it.
  for (int attempt = 0; attempt < 200 && directory_entries(directory.path()).empty(); ++attempt) {
    ::usleep(20000);
  }
  EXPECT_FALSE(directory_entries(directory.path()).empty());
  ::kill(child, SIGTERM);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(directory_entries(directory.path()).empty());
}

}  // namespace
}  // namespace fmg::cli_test
