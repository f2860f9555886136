// Exception types shared by the host layer and the command-line program.
#pragma once

#include <stdexcept>
#include <string>

namespace fmg {

/// Invalid input from a user: a value, an option or a file. The message
/// names the value and states what would be valid.
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// A file that cannot be read or written, or whose contents are malformed.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A feature or backend that this build or machine does not provide, such
/// as the CUDA backend in a build without CUDA or on a host without a GPU.
class Unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace fmg
