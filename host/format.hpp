// Formatting of numbers in messages.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace fmg {

/// Formats `value` with the fewest significant digits (up to 17) that read
/// back as the same double, so a user's 0.1 prints as 0.1 and neighbouring
/// doubles still print differently.
inline std::string format_number(double value) {
  char text[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}

}  // namespace fmg
