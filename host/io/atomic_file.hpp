// Output files that appear under their final name only when complete.
#pragma once

#include <fstream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace fmg {

/// An output file written under a temporary name in the directory of its
/// final path and renamed onto that path by commit(). A reader therefore
/// sees either the old file or the complete new one, and a program that
/// fails before commit() leaves nothing behind.
///
/// The temporary file is hidden, named `.NAME.tmp.PID.N`, and created with
/// the default permissions (0666 less the umask).
/// NOTE: commit() does not call fsync, so the rename is atomic against
/// concurrent readers and program failures but not against a power loss.
class AtomicFile {
 public:
  /// Creates the temporary file for `path` and opens it for binary writing.
  /// Throws InvalidArgument when `path` is empty, and FileError naming the
  /// path and the reason from the operating system (missing directory, no
  /// permission) when the file cannot be created or `path` is a directory.
  explicit AtomicFile(std::string path);

  /// Removes the temporary file unless commit() succeeded.
  ~AtomicFile();

  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  AtomicFile(AtomicFile&& other) noexcept;
  /// Discards this object's uncommitted file, then takes over `other`'s.
  AtomicFile& operator=(AtomicFile&& other) noexcept;

  /// Returns the stream that writes the temporary file. Throws
  /// std::logic_error after commit() or on a moved-from object.
  std::ostream& stream();

  /// Flushes and closes the file, checks that every write succeeded and
  /// renames it onto the final path, replacing any file there. Throws
  /// FileError on failure, after removing the temporary file, and
  /// std::logic_error when called twice.
  void commit();

  /// Final path, as given to the constructor.
  const std::string& path() const { return path_; }

  /// Path of the temporary file; empty after commit() or a move.
  const std::string& temporary_path() const { return temporary_path_; }

  /// Whether commit() has succeeded.
  bool committed() const { return committed_; }

 private:
  friend class OutputSet;

  // The two steps of commit(), split so that OutputSet can finish writing
  // every file before it renames any.
  void close_and_check();
  void rename_onto_path();
  void discard() noexcept;

  std::string path_;
  std::string temporary_path_;
  std::ofstream stream_;
  bool committed_ = false;
};

/// A set of output files committed together at the end of a run.
///
/// Add every output file before the computation starts: add() creates the
/// temporary file at once, so an unwritable output path fails before any
/// work is done, and a run that fails midway leaves no output behind.
/// Register the run's input files with add_input() first, so that an output
/// that would replace an input is rejected before its file is created.
class OutputSet {
 public:
  OutputSet() = default;
  OutputSet(const OutputSet&) = delete;
  OutputSet& operator=(const OutputSet&) = delete;
  OutputSet(OutputSet&&) noexcept = default;
  OutputSet& operator=(OutputSet&&) noexcept = default;

  /// Stages the output file `path` and returns it for writing. The
  /// reference stays valid for the lifetime of the set. `option` is the
  /// command-line option that names the file, such as "--summary", or empty
  /// outside a command line. Throws InvalidArgument naming both options
  /// when `path` names an output already in the set or a registered input.
  /// Paths match after resolving `.`, `..` and symbolic links, and an
  /// existing file also matches an input it is a hard link of. Throws
  /// FileError when the file cannot be created, and std::logic_error after
  /// commit_all().
  AtomicFile& add(std::string path, std::string option = "");

  /// Registers `path`, given by the command-line option `option` (such as
  /// "--starts"), as an input file that no output may replace. Throws
  /// InvalidArgument when an output already staged is the same file, and
  /// std::logic_error after commit_all().
  void add_input(const std::string& path, const std::string& option);

  /// Commits every staged file. All files are flushed, closed and checked
  /// before the first rename, so a write error leaves no output file. If a
  /// rename fails, the files already renamed are removed again and FileError
  /// is thrown. Files that existed at those paths before are then lost too.
  void commit_all();

  /// Number of staged files.
  std::size_t size() const { return files_.size(); }

 private:
  // unique_ptr keeps each AtomicFile at a fixed address, so the references
  // that add() returns stay valid when the vector grows.
  std::vector<std::unique_ptr<AtomicFile>> files_;
  std::vector<std::string> resolved_paths_;
  std::vector<std::string> options_;  ///< The option of each staged file.
  struct Input {
    std::string path;
    std::string option;
    std::string resolved_path;
  };
  std::vector<Input> inputs_;
  bool committed_ = false;
};

/// Installs handlers for SIGINT, SIGTERM, SIGHUP and SIGQUIT that remove
/// every temporary file of an uncommitted AtomicFile, then end the process
/// with the same signal. Programs call it once at start-up.
void remove_outputs_on_termination_signals();

/// Writes `text` to `path` through an AtomicFile. Throws FileError when the
/// file cannot be created, written or renamed.
void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace fmg
