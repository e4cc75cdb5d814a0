// metrics.jsonl + TensorBoard writing, FLOPs per token, device peak FLOP/s and peak memory.
#include "trainer/report/metrics.h"

#include <ATen/ATen.h>
#include <ATen/DeviceAccelerator.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "models/error.h"

namespace mt {
namespace fs = std::filesystem;

MetricsWriter::MetricsWriter(const fs::path& run_dir, int64_t resume_bytes, bool tensorboard)
    : path_(run_dir / "metrics.jsonl") {
  std::error_code ec;
  // A resumed run whose metrics.jsonl was deleted starts a new one; its length, not the
  // checkpoint's, is what the next checkpoint records (else the second resume finds it "short").
  const bool append = resume_bytes >= 0 && fs::exists(path_, ec);
  if (append) {
    const auto size = static_cast<int64_t>(fs::file_size(path_, ec));
    if (!ec && size < resume_bytes)
      throw Error(fmt::format("{}: {} bytes, shorter than the {} the checkpoint recorded", path_.string(), size,
                              resume_bytes));
    fs::resize_file(path_, static_cast<uintmax_t>(resume_bytes), ec);
    if (ec) throw Error(fmt::format("{}: cannot truncate to the checkpoint's position: {}", path_.string(), ec.message()));
  }
  file_ = std::fopen(path_.c_str(), append ? "ab" : "wb");
  if (file_ == nullptr) throw Error(fmt::format("{}: cannot open for writing: {}", path_.string(), std::strerror(errno)));
  bytes_ = append ? resume_bytes : 0;
  if (tensorboard) tb_ = std::make_unique<TensorBoardWriter>(run_dir / "tensorboard");
}

MetricsWriter::~MetricsWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsWriter::write(const nlohmann::json& record) {
  nlohmann::json stamped = record;
  stamped["time"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string line = stamped.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    throw Error(fmt::format("{}: write failed: {}", path_.string(), std::strerror(errno)));
  bytes_ += static_cast<int64_t>(line.size());
  if (!tb_) return;
  const int64_t step = record.value("step", int64_t{0});
  for (const auto& [key, value] : record.items()) {
    if (key == "step" || key == "time" || !value.is_number()) continue;
    const bool eval = key.compare(0, 5, "eval_") == 0;
    tb_->add_scalar((eval ? "eval/" : "train/") + key, value.get<double>(), step);
  }
  tb_->flush();
}

double training_flops_per_token(const ModelConfig& c, int64_t seq_len) {
  const double H = static_cast<double>(c.hidden_size), D = static_cast<double>(c.head_dim);
  const double q = static_cast<double>(c.num_heads) * D, kv = static_cast<double>(c.num_kv_heads) * D;
  const double per_layer = H * q + 2 * H * kv + q * H + 3 * H * static_cast<double>(c.intermediate_size);
  const double matmul_params = static_cast<double>(c.num_layers) * per_layer + static_cast<double>(c.vocab_size) * H;
  const double attention = 12.0 * static_cast<double>(c.num_layers) * static_cast<double>(seq_len) * q;
  return 6.0 * matmul_params + attention;
}

std::optional<double> device_peak_flops(bool cuda) {
  if (const char* env = std::getenv("MAINTUNE_PEAK_TFLOPS"); env != nullptr && *env != '\0') {
    const double v = std::atof(env);
    if (v > 0) return v * 1e12;
  }
  if (!cuda) return std::nullopt;
  static const std::string name = [] {
    std::string out;
    if (FILE* p = popen("nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null", "r")) {
      std::array<char, 256> buf{};
      while (std::fgets(buf.data(), static_cast<int>(buf.size()), p) != nullptr) out += buf.data();
      pclose(p);
    }
    return out;
  }();
  if (name.find("H100") != std::string::npos || name.find("H200") != std::string::npos ||
      name.find("H800") != std::string::npos || name.find("GH200") != std::string::npos)
    return 989e12;
  if (name.find("A100") != std::string::npos || name.find("A800") != std::string::npos) return 312e12;
  return std::nullopt;
}

int64_t peak_memory_bytes(bool cuda) {
  if (cuda) {
    const auto stats = at::accelerator::getDeviceStats(0);
    return stats.allocated_bytes[static_cast<size_t>(c10::CachingDeviceAllocator::StatType::AGGREGATE)].peak;
  }
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

void reset_peak_memory(bool cuda) {
  if (cuda) at::accelerator::resetPeakStats(0);
}

}  // namespace mt
