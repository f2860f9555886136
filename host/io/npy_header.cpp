#include "host/io/npy_header.hpp"

#include <cctype>
#include <limits>

#include "host/errors.hpp"

namespace fmg::detail {

namespace {

// Recursive-descent parser for the header dict, a Python literal such as
// {'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }. It accepts
// either quote character, any key order, optional trailing commas, Python 2
// long suffixes ("3L") and any whitespace, but no other Python syntax.
class NpyHeaderParser {
 public:
  NpyHeaderParser(const std::string& path, const std::string& text,
                  std::size_t file_offset, const std::string& supported_dtypes)
      : path_(path), text_(text), file_offset_(file_offset),
        supported_dtypes_(supported_dtypes) {}

  NpyHeader parse() {
    NpyHeader header;
    bool have_descr = false;
    bool have_fortran_order = false;
    bool have_shape = false;

    skip_whitespace();
    const std::size_t dict_start = pos_;
    expect('{', "'{' to open the header dict");
    skip_whitespace();
    while (!at('}')) {
      const std::size_t key_start = pos_;
      const std::string key = parse_string("a quoted key or '}'");
      skip_whitespace();
      expect(':', "':' after the key");
      skip_whitespace();

      if (key == "descr") {
        if (have_descr) fail(key_start, "duplicate key 'descr'");
        have_descr = true;
        header.descr_offset = file_offset_ + pos_;
        if (at('[')) {
          throw FileError(path_ + ": unsupported dtype at byte " +
                          std::to_string(header.descr_offset) +
                          ": structured arrays (a descr list) are not supported; "
                          "supported dtypes are " + supported_dtypes_);
        }
        header.descr = parse_string("a quoted dtype string such as '<f8'");
      } else if (key == "fortran_order") {
        if (have_fortran_order) fail(key_start, "duplicate key 'fortran_order'");
        have_fortran_order = true;
        header.fortran_order_offset = file_offset_ + pos_;
        header.fortran_order = parse_bool();
      } else if (key == "shape") {
        if (have_shape) fail(key_start, "duplicate key 'shape'");
        have_shape = true;
        header.shape_offset = file_offset_ + pos_;
        header.shape = parse_shape();
      } else {
        fail(key_start, "unknown key '" + key +
                            "'; the valid keys are 'descr', 'fortran_order' and 'shape'");
      }

      skip_whitespace();
      if (at(',')) {
        ++pos_;
        skip_whitespace();
      } else if (!at('}')) {
        fail(pos_, "expected ',' or '}' after the value of '" + key + "', " + found());
      }
    }
    ++pos_;
    skip_whitespace();
    if (pos_ != text_.size()) fail(pos_, "unexpected text after the closing '}'");

    if (!have_descr) fail(dict_start, "expected key 'descr'");
    if (!have_fortran_order) fail(dict_start, "expected key 'fortran_order'");
    if (!have_shape) fail(dict_start, "expected key 'shape'");
    return header;
  }

 private:
  [[noreturn]] void fail(std::size_t pos, const std::string& what) const {
    throw FileError(path_ + ": invalid .npy header at byte " +
                    std::to_string(file_offset_ + pos) + ": " + what);
  }

  bool at(char c) const { return pos_ < text_.size() && text_[pos_] == c; }

  std::string found() const {
    if (pos_ >= text_.size()) return "found the end of the header";
    return std::string("found '") + text_[pos_] + "'";
  }

  void skip_whitespace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  void expect(char c, const char* what) {
    if (!at(c)) fail(pos_, std::string("expected ") + what + ", " + found());
    ++pos_;
  }

  std::string parse_string(const char* what) {
    if (!at('\'') && !at('"')) fail(pos_, std::string("expected ") + what + ", " + found());
    const std::size_t start = pos_;
    const char quote = text_[pos_++];
    std::string value;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
      value += text_[pos_++];
    }
    if (pos_ >= text_.size()) fail(start, "unterminated string");
    ++pos_;
    return value;
  }

  bool parse_bool() {
    for (const bool value : {true, false}) {
      const std::string word = value ? "True" : "False";
      if (text_.compare(pos_, word.size(), word) == 0) {
        const std::size_t end = pos_ + word.size();
        if (end < text_.size() && std::isalnum(static_cast<unsigned char>(text_[end]))) break;
        pos_ = end;
        return value;
      }
    }
    fail(pos_, "expected True or False for 'fortran_order', " + found());
  }

  std::vector<std::size_t> parse_shape() {
    std::vector<std::size_t> shape;
    const std::size_t start = pos_;
    expect('(', "a tuple such as (3, 2) for 'shape'");
    skip_whitespace();
    bool trailing_comma = false;
    while (!at(')')) {
      shape.push_back(parse_dimension());
      skip_whitespace();
      trailing_comma = at(',');
      if (trailing_comma) {
        ++pos_;
        skip_whitespace();
      } else if (!at(')')) {
        fail(pos_, "expected ',' or ')' in the shape tuple, " + found());
      }
    }
    ++pos_;
    if (shape.size() == 1 && !trailing_comma) {
      fail(start, "shape with one dimension must be a tuple such as (" +
                      std::to_string(shape[0]) + ",)");
    }
    return shape;
  }

  std::size_t parse_dimension() {
    const std::size_t start = pos_;
    if (pos_ >= text_.size() || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      fail(pos_, "expected a non-negative integer in the shape tuple, " + found());
    }
    constexpr std::size_t max_size = std::numeric_limits<std::size_t>::max();
    std::size_t value = 0;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      const std::size_t digit = static_cast<std::size_t>(text_[pos_] - '0');
      if (value > (max_size - digit) / 10) {
        fail(start, "shape dimension overflows a 64-bit size");
      }
      value = value * 10 + digit;
      ++pos_;
    }
    if (at('L') || at('l')) ++pos_;
    return value;
  }

  const std::string& path_;
  const std::string& text_;
  std::size_t file_offset_;
  const std::string& supported_dtypes_;
  std::size_t pos_ = 0;
};

}  // namespace

NpyHeader parse_npy_header(const std::string& path, const std::string& text,
                           std::size_t file_offset, const std::string& supported_dtypes) {
  return NpyHeaderParser(path, text, file_offset, supported_dtypes).parse();
}

}  // namespace fmg::detail
