// Helpers for the end-to-end tests of the fmg program: running the real
// binary with captured output, temporary directories and file access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "host/io/npy.hpp"

namespace fmg::cli_test {

/// Exit status, standard output and standard error of one program run.
struct CommandResult {
  /// The exit status, or -N when signal N ended the program.
  int exit_status = -1;
  std::string standard_output;
  std::string standard_error;
};

/// Runs the fmg binary under test with `arguments` (without the program
/// name), stdin from /dev/null, and stdout and stderr captured in separate
/// temporary files. The arguments are passed to posix_spawn as they are,
/// with no shell in between. Throws std::runtime_error when the program
/// cannot be started.
CommandResult run_fmg(const std::vector<std::string>& arguments);

/// Reports whether the fmg binary picks the CUDA backend for
/// `--backend auto`, that is whether a usable CUDA device is present. Runs
/// the program once and caches the result.
bool cuda_device_present();

/// A fresh directory under the system temporary directory (mkdtemp),
/// removed with everything in it on destruction.
class TempDirectory {
 public:
  TempDirectory();
  ~TempDirectory();

  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;

  const std::filesystem::path& path() const { return path_; }

  /// Returns the path of `name` inside the directory.
  std::string file(const std::string& name) const;

 private:
  std::filesystem::path path_;
};

/// Returns the names of every entry in `directory`, hidden ones included.
std::set<std::string> directory_entries(const std::filesystem::path& directory);

/// Writes `bytes` to `path`, replacing any file there.
void write_bytes(const std::string& path, const std::string& bytes);

/// Returns the contents of the file at `path`.
std::string read_bytes(const std::string& path);

/// Returns the bytes of a float64 .npy file of `shape` containing `values`.
std::string npy_bytes(const std::vector<std::size_t>& shape,
                      const std::vector<double>& values);

/// Returns the elements of a float32 or float64 array as double.
std::vector<double> float_values(const NpyArray& array);

/// Returns the elements of an int32 array.
std::vector<std::int32_t> int32_values(const NpyArray& array);

/// Succeeds when `text` contains at least one of `alternatives`.
testing::AssertionResult contains_any(const std::string& text,
                                      const std::vector<std::string>& alternatives);

}  // namespace fmg::cli_test
