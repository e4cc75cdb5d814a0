// Content hashing: XXH64 (xxHash's 64-bit hash, streaming and one-shot, and of a whole file) and the
// 128-bit keys of JSON key material that name caches, stage results and chunked work. Written here
// rather than taken from libxxhash because the GPU image has no apt to install it; the known-answer
// tests in tests/test_token_cache.cpp pin it to the reference.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace mt {

// XXH64 (xxHash's 64-bit hash, as specified in Cyan4973/xxHash doc/xxhash_spec.md), streaming.
class Xxh64 {
 public:
  explicit Xxh64(uint64_t seed = 0);
  void update(const void* data, size_t len);
  uint64_t digest() const;

 private:
  uint64_t v_[4];
  uint64_t seed_, total_ = 0;
  unsigned char buf_[32];
  size_t buf_len_ = 0;
};
uint64_t xxh64(const void* data, size_t len, uint64_t seed = 0);
// Content hash of a file, read in chunks; errors name the file.
uint64_t xxh64_file(const std::filesystem::path& file);

// 128-bit key (two XXH64 of the canonical JSON dump) of the key material, as 32 hex digits.
std::string cache_key(const nlohmann::json& key_material);

}  // namespace mt
