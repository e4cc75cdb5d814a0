// The device a run trains on, from model.device. Shared by the training loop and the pipeline's
// generation and scoring stages.
#pragma once
#include <c10/core/Device.h>

#include <string>

namespace mt {

// model.device: "cpu", "cuda" (an mt::Error when there is none), or "auto" (cuda when available).
at::Device resolve_device(const std::string& name);

}  // namespace mt
