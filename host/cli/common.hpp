// Pieces shared by the subcommands of the fmg program: option parsing,
// mixture loading, staged outputs and JSON printing.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "host/io/atomic_file.hpp"
#include "host/io/mixture_io.hpp"
#include "host/io/npy.hpp"
#include "kernels/common.hpp"

namespace fmg::cli {

/// Exit statuses of the fmg program.
enum ExitStatus : int {
  exit_ok = 0,
  exit_failure = 1,         ///< A numerical or internal failure.
  exit_invalid_input = 2,   ///< Invalid option or input value.
  exit_file_error = 3,      ///< Unreadable, malformed or unwritable file.
  exit_unavailable = 4,     ///< Backend or feature not available here.
  /// fmg ot: the Newton solve stopped at --max-iterations above
  /// --tolerance. The outputs are written all the same.
  exit_not_converged = 5,
};

/// Parses a sample count written as an integer or in scientific notation
/// ("1e6"). Throws fmg::InvalidArgument for values that are not whole
/// numbers in [1, 2^63), naming `option`.
std::uint64_t parse_count(const std::string& text, const std::string& option);

/// Parses a whole number written as an integer or in scientific notation
/// and checks that it lies in [min, max]. Throws fmg::InvalidArgument naming
/// `option`, the value and the valid range when it does not, and naming
/// `option` and the value when the text is not a whole number.
std::uint64_t parse_count_in_range(const std::string& text, const std::string& option,
                                   std::uint64_t min, std::uint64_t max);

/// Parses a count like parse_count and checks that it is at most `max`:
/// parse_count_in_range with the range [1, max].
std::uint64_t parse_count_at_most(const std::string& text,
                                  const std::string& option, std::uint64_t max);

/// Parses a count that fits an int, from `min` to INT_MAX, for options
/// stored as int.
int parse_int_at_least(const std::string& text, const std::string& option, int min);

/// Parses a seed: a decimal integer in [0, 2^64 - 1]. Throws
/// fmg::InvalidArgument naming `option` otherwise.
std::uint64_t parse_seed(const std::string& text, const std::string& option);

/// Parses a real number, throwing fmg::InvalidArgument naming `option` when
/// the text is not a number.
double parse_real(const std::string& text, const std::string& option);

/// parse_real for options that must be finite: "inf", "nan" and values
/// beyond the double range (1e400) are rejected with the text as typed.
double parse_finite(const std::string& text, const std::string& option);

/// Parses times given as numbers, comma lists of numbers or START:STOP:COUNT
/// (COUNT equally spaced times, both ends included). Every time must lie in
/// [0, 1), where the velocity is defined, and an empty list item is an error.
std::vector<double> parse_times(const std::vector<std::string>& arguments);

/// Throws InvalidArgument naming `what`, the sizes and `advice` when
/// `bytes` of memory exceed the memory available now, read as MemAvailable
/// from /proc/meminfo. Where that file cannot be read, nothing is checked.
void require_memory(double bytes, const std::string& what, const std::string& advice);

/// Throws InvalidArgument naming `path`, the row and the column of the
/// first coordinate of `points` (row-major, `cols` per row) above the
/// magnitude atoms may have in `precision` (1e150 in double, 1e15 in
/// float), beyond which squared distances overflow.
void check_point_magnitudes(const std::vector<double>& points, std::size_t cols,
                            const std::string& path, Precision precision);

/// The mixture of `path`, or the built-in example when `path` is empty.
Mixture load_mixture(const std::string& path);

/// A human-readable name of the mixture's source.
std::string mixture_source(const std::string& path);

/// An .npy file written chunk by chunk: the header goes out at creation
/// with the final shape, and append() adds raw row-major data.
class NpyStream {
 public:
  NpyStream(AtomicFile& file, NpyType type, std::vector<std::size_t> shape);

  void append(const void* data, std::size_t bytes);

  /// Throws fmg::FileError unless exactly the bytes of the shape arrived.
  void finish() const;

 private:
  AtomicFile* file_;
  std::size_t expected_bytes_;
  std::size_t written_bytes_ = 0;
};

/// Formats `value` with `digits` significant digits, as in a table.
std::string format_significant(double value, int digits = 6);

/// Inserts "_<tag>" before the extension of `path` (run.npy -> run_linear.npy).
std::string tagged_path(const std::string& path, const std::string& tag);

/// Writes `summary` to stdout, or to `path` through `outputs`.
void emit_json(const nlohmann::json& summary, AtomicFile* file);

/// Throws fmg::InvalidArgument naming the first option of `command` that
/// was given an empty value, such as --endpoints-out "", which would
/// otherwise read as "not given".
void reject_empty_values(const CLI::App& command);

/// Returns the names of the options of `command` given on its command
/// line, such as "--steps". An option given with its default value is in
/// the set, and an option left out is not.
std::set<std::string> given_options(const CLI::App& command);

/// Help text of -q/--quiet, the same for every subcommand that has it.
extern const char* const quiet_help;

/// Registers the subcommands; each returns through exceptions on failure.
void add_sample_command(CLI::App& app);
void add_field_command(CLI::App& app);
void add_density_command(CLI::App& app);
void add_crosscheck_command(CLI::App& app);
/// fmg ot stores its exit status in `exit_status` when it finishes without
/// an exception, which the caller must keep alive until parsing ends.
void add_ot_command(CLI::App& app, ExitStatus& exit_status);

}  // namespace fmg::cli
