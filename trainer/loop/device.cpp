// model.device resolved to a device (see device.h).
#include "trainer/loop/device.h"

#include <ATen/Context.h>

#include "models/error.h"

namespace mt {

at::Device resolve_device(const std::string& name) {
  if (name == "cpu") return at::kCPU;
  if (name == "cuda") {
    if (!at::hasCUDA()) throw Error("model.device: cuda requested but no CUDA device is available");
    return at::Device(at::kCUDA, 0);
  }
  return at::hasCUDA() ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
}

}  // namespace mt
