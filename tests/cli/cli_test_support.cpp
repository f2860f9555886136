#include "tests/cli/cli_test_support.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

extern char** environ;

namespace fmg::cli_test {
namespace {

std::string system_error_text(int error_number) {
  return std::strerror(error_number);
}

/// A temporary file, created with mkstemp and removed on destruction, that
/// receives one output stream of the child process.
class CaptureFile {
 public:
  explicit CaptureFile(const std::string& stem) {
    const std::string pattern =
        (std::filesystem::temp_directory_path() / ("fmg_cli_" + stem + ".XXXXXX"))
            .string();
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    descriptor_ = ::mkstemp(buffer.data());
    if (descriptor_ < 0) {
      throw std::runtime_error("mkstemp failed for " + pattern + ": " +
                               system_error_text(errno));
    }
    path_ = buffer.data();
  }

  ~CaptureFile() {
    if (descriptor_ >= 0) ::close(descriptor_);
    ::unlink(path_.c_str());
  }

  CaptureFile(const CaptureFile&) = delete;
  CaptureFile& operator=(const CaptureFile&) = delete;

  int descriptor() const { return descriptor_; }

  std::string contents() const { return read_bytes(path_); }

 private:
  int descriptor_ = -1;
  std::string path_;
};

/// Owns a posix_spawn_file_actions_t for the lifetime of one spawn.
class SpawnFileActions {
 public:
  SpawnFileActions() { ::posix_spawn_file_actions_init(&actions_); }
  ~SpawnFileActions() { ::posix_spawn_file_actions_destroy(&actions_); }
  SpawnFileActions(const SpawnFileActions&) = delete;
  SpawnFileActions& operator=(const SpawnFileActions&) = delete;

  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

void check_spawn_call(int result, const char* call_name) {
  if (result != 0) {
    throw std::runtime_error(std::string(call_name) + " failed: " +
                             system_error_text(result));
  }
}

}  // namespace

CommandResult run_fmg(const std::vector<std::string>& arguments) {
  const std::string binary = FMG_BINARY;
  CaptureFile standard_output("stdout");
  CaptureFile standard_error("stderr");

  SpawnFileActions actions;
  check_spawn_call(::posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null",
                                                      O_RDONLY, 0),
                   "posix_spawn_file_actions_addopen");
  check_spawn_call(::posix_spawn_file_actions_adddup2(
                       actions.get(), standard_output.descriptor(), 1),
                   "posix_spawn_file_actions_adddup2");
  check_spawn_call(::posix_spawn_file_actions_adddup2(
                       actions.get(), standard_error.descriptor(), 2),
                   "posix_spawn_file_actions_adddup2");

  std::vector<std::string> argument_storage;
  argument_storage.reserve(arguments.size() + 1);
  argument_storage.push_back(binary);
  argument_storage.insert(argument_storage.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (std::string& argument : argument_storage) argv.push_back(argument.data());
  argv.push_back(nullptr);

  pid_t pid = 0;
  check_spawn_call(::posix_spawn(&pid, binary.c_str(), actions.get(), nullptr,
                                 argv.data(), environ),
                   ("posix_spawn of " + binary).c_str());

  int wait_status = 0;
  while (::waitpid(pid, &wait_status, 0) < 0) {
    if (errno != EINTR) {
      throw std::runtime_error("waitpid failed: " + system_error_text(errno));
    }
  }

  CommandResult result;
  if (WIFEXITED(wait_status)) {
    result.exit_status = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    result.exit_status = -WTERMSIG(wait_status);
  }
  result.standard_output = standard_output.contents();
  result.standard_error = standard_error.contents();
  return result;
}

bool cuda_device_present() {
  static std::optional<bool> present;
  if (present) return *present;

  const CommandResult result = run_fmg(
      {"sample", "-n", "10", "--schedule", "linear", "--backend", "auto", "--json", "--quiet"});
  if (result.exit_status != 0) {
    throw std::runtime_error("fmg sample --backend auto failed with status " +
                             std::to_string(result.exit_status) + ": " +
                             result.standard_error);
  }
  const nlohmann::json summary = nlohmann::json::parse(result.standard_output);
  present = summary.at("runs").at(0).at("backend").get<std::string>() == "cuda";
  return *present;
}

TempDirectory::TempDirectory() {
  const std::string pattern =
      (std::filesystem::temp_directory_path() / "fmg_cli_test.XXXXXX").string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed for " + pattern + ": " +
                             system_error_text(errno));
  }
  path_ = buffer.data();
}

TempDirectory::~TempDirectory() {
  std::error_code error;
  std::filesystem::remove_all(path_, error);
}

std::string TempDirectory::file(const std::string& name) const {
  return (path_ / name).string();
}

std::set<std::string> directory_entries(const std::filesystem::path& directory) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error("failed to write test file " + path);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("failed to read test file " + path);
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

std::string npy_bytes(const std::vector<std::size_t>& shape,
                      const std::vector<double>& values) {
  std::ostringstream out;
  write_npy(out, NpyType::float64, shape, values.data());
  return out.str();
}

std::vector<double> float_values(const NpyArray& array) {
  std::vector<double> values(array.size());
  if (array.type == NpyType::float64) {
    std::memcpy(values.data(), array.data.data(), array.data.size());
  } else if (array.type == NpyType::float32) {
    std::vector<float> floats(array.size());
    std::memcpy(floats.data(), array.data.data(), array.data.size());
    values.assign(floats.begin(), floats.end());
  } else {
    throw std::runtime_error(std::string("expected a float array, got ") +
                             npy_type_name(array.type));
  }
  return values;
}

std::vector<std::int32_t> int32_values(const NpyArray& array) {
  if (array.type != NpyType::int32) {
    throw std::runtime_error(std::string("expected an int32 array, got ") +
                             npy_type_name(array.type));
  }
  std::vector<std::int32_t> values(array.size());
  std::memcpy(values.data(), array.data.data(), array.data.size());
  return values;
}

testing::AssertionResult contains_any(const std::string& text,
                                      const std::vector<std::string>& alternatives) {
  for (const std::string& alternative : alternatives) {
    if (text.find(alternative) != std::string::npos) {
      return testing::AssertionSuccess();
    }
  }
  testing::AssertionResult failure = testing::AssertionFailure();
  failure << "none of";
  for (const std::string& alternative : alternatives) {
    failure << " \"" << alternative << "\"";
  }
  return failure << " occurs in:\n" << text;
}

}  // namespace fmg::cli_test
