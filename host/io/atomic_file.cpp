#include "host/io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "host/errors.hpp"

namespace fmg {
namespace {

namespace fs = std::filesystem;

// Temporary files not yet committed or discarded, kept in fixed storage so
// that a signal handler can remove them with async-signal-safe calls only.
constexpr int max_pending_files = 256;
constexpr std::size_t max_pending_path = 4096;
char pending_paths[max_pending_files][max_pending_path];
volatile std::sig_atomic_t pending_used[max_pending_files];
std::mutex pending_mutex;

void register_pending(const std::string& path) {
  if (path.size() >= max_pending_path) return;
  const std::lock_guard<std::mutex> lock(pending_mutex);
  for (int i = 0; i < max_pending_files; ++i) {
    if (pending_used[i] != 0) continue;
    std::memcpy(pending_paths[i], path.c_str(), path.size() + 1);
    pending_used[i] = 1;
    return;
  }
  // NOTE: past 256 open outputs a signal leaves the extra temporaries behind.
}

void unregister_pending(const std::string& path) {
  const std::lock_guard<std::mutex> lock(pending_mutex);
  for (int i = 0; i < max_pending_files; ++i) {
    if (pending_used[i] != 0 && path == pending_paths[i]) {
      pending_used[i] = 0;
      return;
    }
  }
}

extern "C" void remove_pending_and_reraise(int signal_number) {
  for (int i = 0; i < max_pending_files; ++i) {
    if (pending_used[i] != 0) ::unlink(pending_paths[i]);
  }
  std::signal(signal_number, SIG_DFL);
  std::raise(signal_number);
}

std::string os_error_message(int error_number) {
  return std::generic_category().message(error_number);
}

// Creates an empty file next to `target` under a hidden name that no other
// AtomicFile of any process uses, and returns its path. O_EXCL makes the
// creation fail rather than reuse a file left by a crashed run.
std::string create_temporary_file(const std::string& target) {
  static std::atomic<unsigned long> counter{0};

  const fs::path target_path(target);
  // Keeps the hidden name within NAME_MAX (255 on Linux) for long names.
  const std::string name = target_path.filename().string().substr(0, 200);
  const fs::path directory = target_path.parent_path();
  constexpr int max_attempts = 100;

  for (int attempt = 1;; ++attempt) {
    const std::string hidden_name = "." + name + ".tmp." +
                                    std::to_string(::getpid()) + "." +
                                    std::to_string(counter++);
    const fs::path temporary = directory / hidden_name;
    const int fd = ::open(temporary.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      ::close(fd);
      return temporary.string();
    }
    const int error_number = errno;
    if (error_number == EEXIST && attempt < max_attempts) continue;
    throw FileError("failed to create output file '" + target +
                    "': " + os_error_message(error_number));
  }
}

// Returns the path that `path` refers to, with `.`, `..` and symbolic links
// of its existing part resolved, so that two spellings compare equal.
std::string resolve_path(const std::string& path) {
  std::error_code error;
  const fs::path absolute = fs::absolute(path, error);
  if (error) return path;
  const fs::path resolved = fs::weakly_canonical(absolute, error);
  if (error) return absolute.lexically_normal().string();
  return resolved.string();
}

// Reports whether the resolved paths `a` and `b` name one file: the same
// path, or two existing paths of the same file (a hard link).
bool same_file(const std::string& a, const std::string& b) {
  if (a == b) return true;
  std::error_code error;
  return fs::equivalent(a, b, error) && !error;
}

std::string input_conflict_message(const std::string& output,
                                   const std::string& output_option,
                                   const std::string& input,
                                   const std::string& option) {
  const std::string of_option = output_option.empty() ? "" : " of " + output_option;
  return "output path '" + output + "'" + of_option + " is also an input (" + option +
         " '" + input + "'); choose another output path";
}

std::string duplicate_output_message(const std::string& first_path,
                                     const std::string& first_option,
                                     const std::string& path, const std::string& option) {
  if (first_option.empty() || option.empty()) {
    return "output path '" + path + "' is given twice (it is the same file as '" +
           first_path + "'); each output needs its own path";
  }
  if (first_path == path) {
    return first_option + " and " + option + " both write '" + path +
           "'; give each output its own path";
  }
  return first_option + " '" + first_path + "' and " + option + " '" + path +
         "' are the same file; give each output its own path";
}

}  // namespace

void remove_outputs_on_termination_signals() {
  struct sigaction action {};
  action.sa_handler = remove_pending_and_reraise;
  sigemptyset(&action.sa_mask);
  for (int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
    ::sigaction(signal_number, &action, nullptr);
  }
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) {
    throw InvalidArgument("output path is empty; give a file name");
  }
  const fs::path target(path_);
  std::error_code error;
  if (!target.has_filename() || fs::is_directory(target, error)) {
    throw FileError("failed to create output file '" + path_ +
                    "': the path is a directory, not a file name");
  }
  // Renaming onto a device node, pipe or socket would replace it with a
  // regular file (as root, /dev/null itself), so only regular files and new
  // paths are accepted.
  const fs::file_status status = fs::status(target, error);
  if (!error && fs::exists(status) && !fs::is_regular_file(status)) {
    throw FileError("failed to create output file '" + path_ +
                    "': it exists and is not a regular file (a device, pipe or "
                    "socket); give the path of a regular file");
  }

  temporary_path_ = create_temporary_file(path_);
  register_pending(temporary_path_);
  stream_.open(temporary_path_, std::ios::binary | std::ios::trunc);
  if (!stream_.is_open()) {
    const int error_number = errno;
    discard();
    throw FileError("failed to open output file '" + path_ +
                    "' for writing: " + os_error_message(error_number));
  }
}

AtomicFile::~AtomicFile() {
  if (!committed_) discard();
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      temporary_path_(std::exchange(other.temporary_path_, std::string())),
      stream_(std::move(other.stream_)),
      committed_(other.committed_) {}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    if (!committed_) discard();
    path_ = std::move(other.path_);
    temporary_path_ = std::exchange(other.temporary_path_, std::string());
    stream_ = std::move(other.stream_);
    committed_ = other.committed_;
  }
  return *this;
}

std::ostream& AtomicFile::stream() {
  if (committed_ || temporary_path_.empty()) {
    throw std::logic_error("AtomicFile::stream: output file '" + path_ +
                           "' is already committed or discarded");
  }
  return stream_;
}

void AtomicFile::commit() {
  if (committed_ || temporary_path_.empty()) {
    throw std::logic_error("AtomicFile::commit: output file '" + path_ +
                           "' is already committed or discarded");
  }
  close_and_check();
  rename_onto_path();
}

void AtomicFile::close_and_check() {
  // errno is only meaningful if the flush or close itself fails; an earlier
  // failed write leaves the stream failed with errno possibly overwritten.
  errno = 0;
  stream_.flush();
  stream_.close();
  if (stream_.fail()) {
    const int error_number = errno;
    discard();
    std::string message = "failed to write output file '" + path_ + "'";
    if (error_number != 0) message += ": " + os_error_message(error_number);
    throw FileError(message);
  }
}

void AtomicFile::rename_onto_path() {
  if (std::rename(temporary_path_.c_str(), path_.c_str()) != 0) {
    const int error_number = errno;
    const std::string temporary = temporary_path_;
    discard();
    throw FileError("failed to rename '" + temporary + "' onto output file '" +
                    path_ + "': " + os_error_message(error_number));
  }
  unregister_pending(temporary_path_);
  temporary_path_.clear();
  committed_ = true;
}

void AtomicFile::discard() noexcept {
  if (stream_.is_open()) stream_.close();
  if (!temporary_path_.empty()) {
    std::remove(temporary_path_.c_str());
    unregister_pending(temporary_path_);
    temporary_path_.clear();
  }
}

AtomicFile& OutputSet::add(std::string path, std::string option) {
  if (committed_) {
    throw std::logic_error("OutputSet::add: the set is already committed");
  }
  // "-" reads as standard output elsewhere; here it would create a file of
  // that name.
  if (path == "-") {
    throw InvalidArgument("invalid " + (option.empty() ? std::string("output path") : option) +
                          " '-': it names a file to write, and '-' for standard output "
                          "is not supported here");
  }
  std::string resolved = resolve_path(path);
  for (const Input& input : inputs_) {
    if (same_file(resolved, input.resolved_path)) {
      throw InvalidArgument(
          input_conflict_message(path, option, input.path, input.option));
    }
  }
  for (std::size_t i = 0; i < resolved_paths_.size(); ++i) {
    if (resolved_paths_[i] == resolved) {
      throw InvalidArgument(
          duplicate_output_message(files_[i]->path(), options_[i], path, option));
    }
  }

  auto file = std::make_unique<AtomicFile>(std::move(path));
  resolved_paths_.reserve(resolved_paths_.size() + 1);
  options_.reserve(options_.size() + 1);
  files_.push_back(std::move(file));
  resolved_paths_.push_back(std::move(resolved));
  options_.push_back(std::move(option));
  return *files_.back();
}

void OutputSet::add_input(const std::string& path, const std::string& option) {
  if (committed_) {
    throw std::logic_error("OutputSet::add_input: the set is already committed");
  }
  std::string resolved = resolve_path(path);
  for (std::size_t i = 0; i < resolved_paths_.size(); ++i) {
    if (same_file(resolved_paths_[i], resolved)) {
      throw InvalidArgument(
          input_conflict_message(files_[i]->path(), options_[i], path, option));
    }
  }
  inputs_.push_back({path, option, std::move(resolved)});
}

void OutputSet::commit_all() {
  if (committed_) {
    throw std::logic_error("OutputSet::commit_all: called twice");
  }
  committed_ = true;

  try {
    for (auto& file : files_) file->close_and_check();
  } catch (...) {
    for (auto& file : files_) file->discard();
    throw;
  }

  std::size_t renamed = 0;
  try {
    for (; renamed < files_.size(); ++renamed) {
      files_[renamed]->rename_onto_path();
    }
  } catch (const FileError& error) {
    for (std::size_t i = 0; i < renamed; ++i) {
      std::remove(files_[i]->path().c_str());
    }
    for (auto& file : files_) file->discard();
    throw FileError(std::string(error.what()) +
                    "; removed the other output files of this run");
  }
}

void write_text_atomically(const std::string& path, const std::string& text) {
  AtomicFile file(path);
  file.stream() << text;
  file.commit();
}

}  // namespace fmg
