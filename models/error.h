// The one exception type of maintune: every bad input (file, line, tensor, field) is reported
// through it with a message that names the place, and the CLI turns it into exit code 1.
#pragma once
#include <stdexcept>
#include <string>

namespace mt {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace mt
