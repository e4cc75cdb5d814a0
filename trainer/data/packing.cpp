// Row plans and packed batch tensors (see packing.h). First-fit uses a max segment tree over the
// rows' free space so that finding the leftmost row with room is O(log n).
#include "trainer/data/packing.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/error.h"

namespace mt {

void document_targets(const uint32_t* ids, const uint8_t* mask, int64_t len, int64_t* out, bool* synthetic) {
  for (int64_t t = 0; t + 1 < len; ++t) out[t] = mask[t + 1] != 0 ? static_cast<int64_t>(ids[t + 1]) : kIgnoreIndex;
  if (len > 0) out[len - 1] = kIgnoreIndex;
  if (synthetic == nullptr) return;
  for (int64_t t = 0; t + 1 < len; ++t) synthetic[t] = mask[t + 1] == kMaskSyntheticTarget;
  if (len > 0) synthetic[len - 1] = false;
}

std::vector<std::vector<int64_t>> pack_rows(const std::vector<int64_t>& lengths, int64_t max_len,
                                            const std::string& mode) {
  if (mode != "first_fit" && mode != "sequential" && mode != "none")
    throw Error(fmt::format("packing must be \"first_fit\", \"sequential\" or \"none\", got \"{}\"", mode));
  const auto n = static_cast<int64_t>(lengths.size());
  for (int64_t i = 0; i < n; ++i)
    if (lengths[static_cast<size_t>(i)] <= 0 || lengths[static_cast<size_t>(i)] > max_len)
      throw Error(fmt::format("packing: example {} has {} tokens, outside 1..max_len ({})", i,
                              lengths[static_cast<size_t>(i)], max_len));
  std::vector<std::vector<int64_t>> rows;
  if (mode == "none") {
    for (int64_t i = 0; i < n; ++i) rows.push_back({i});
  } else if (mode == "sequential") {
    int64_t used = max_len;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t len = lengths[static_cast<size_t>(i)];
      if (used + len > max_len) {
        rows.emplace_back();
        used = 0;
      }
      rows.back().push_back(i);
      used += len;
    }
  } else {
    // Leaves: free space of row r (rows not opened yet have max_len); inner nodes: max of children.
    size_t size = 1;
    while (size < lengths.size()) size *= 2;
    std::vector<int64_t> tree(2 * size, max_len);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t len = lengths[static_cast<size_t>(i)];
      size_t node = 1;
      while (node < size) node = tree[2 * node] >= len ? 2 * node : 2 * node + 1;
      const size_t row = node - size;
      if (row >= rows.size()) rows.resize(row + 1);
      rows[row].push_back(i);
      tree[node] -= len;
      for (node /= 2; node >= 1; node /= 2) tree[node] = std::max(tree[2 * node], tree[2 * node + 1]);
    }
  }
  return rows;
}

namespace {

void check_example_index(const DatasetView& data, int64_t e) {
  if (e < 0 || e >= data.num_examples)
    throw Error(fmt::format("packing: example index {} outside the dataset (0..{})", e, data.num_examples - 1));
}

}  // namespace

PackedBatch make_padded_batch(const DatasetView& data, const std::vector<std::vector<int64_t>>& rows, int64_t seq_len,
                              int64_t pad_id) {
  const auto B = static_cast<int64_t>(rows.size());
  const auto opts = at::TensorOptions().dtype(at::kLong);
  PackedBatch b;
  b.input_ids = at::full({B, seq_len}, pad_id, opts);
  b.positions = at::zeros({B, seq_len}, opts);
  b.doc_ids = at::full({B, seq_len}, -1, opts);
  b.valid = at::zeros({B, seq_len}, at::TensorOptions().dtype(at::kBool));
  b.targets = at::full({B, seq_len}, kIgnoreIndex, opts);
  b.synthetic = at::zeros({B, seq_len}, at::TensorOptions().dtype(at::kBool));
  int64_t* ids = b.input_ids.data_ptr<int64_t>();
  int64_t* pos = b.positions.data_ptr<int64_t>();
  int64_t* doc = b.doc_ids.data_ptr<int64_t>();
  bool* valid = b.valid.data_ptr<bool>();
  int64_t* tgt = b.targets.data_ptr<int64_t>();
  bool* syn = b.synthetic.data_ptr<bool>();
  for (int64_t r = 0; r < B; ++r) {
    int64_t at = r * seq_len, used = 0;
    const auto& row = rows[static_cast<size_t>(r)];
    for (size_t d = 0; d < row.size(); ++d) {
      const int64_t e = row[d];
      check_example_index(data, e);
      const int64_t len = data.length(e);
      if (used + len > seq_len)
        throw Error(fmt::format("packing: row {} holds {} tokens, more than seq_len {}", r, used + len, seq_len));
      const uint32_t* src = data.tokens + data.offsets[e];
      for (int64_t t = 0; t < len; ++t) {
        ids[at + t] = src[t];
        pos[at + t] = t;
        doc[at + t] = static_cast<int64_t>(d);
        valid[at + t] = true;
      }
      document_targets(src, data.masks + data.offsets[e], len, tgt + at, syn + at);
      at += len;
      used += len;
    }
  }
  b.target_tokens = b.targets.ne(kIgnoreIndex).sum().item<int64_t>();
  b.synthetic_target_tokens = b.synthetic.sum().item<int64_t>();
  b.examples = rows;
  return b;
}

PackedBatch make_flat_batch(const DatasetView& data, const std::vector<std::vector<int64_t>>& rows) {
  int64_t total = 0, docs = 0;
  for (const auto& row : rows)
    for (int64_t e : row) {
      check_example_index(data, e);
      total += data.length(e);
      ++docs;
    }
  if (total > INT32_MAX) throw Error(fmt::format("packing: flat batch of {} tokens overflows int32 cu_seqlens", total));
  const auto opts = at::TensorOptions().dtype(at::kLong);
  PackedBatch b;
  b.input_ids = at::empty({1, total}, opts);
  b.positions = at::empty({1, total}, opts);
  b.doc_ids = at::empty({1, total}, opts);
  b.valid = at::ones({1, total}, at::TensorOptions().dtype(at::kBool));
  b.targets = at::empty({1, total}, opts);
  b.synthetic = at::empty({1, total}, at::TensorOptions().dtype(at::kBool));
  b.cu_seqlens = at::empty({docs + 1}, at::TensorOptions().dtype(at::kInt));
  int64_t* ids = b.input_ids.data_ptr<int64_t>();
  int64_t* pos = b.positions.data_ptr<int64_t>();
  int64_t* doc = b.doc_ids.data_ptr<int64_t>();
  int64_t* tgt = b.targets.data_ptr<int64_t>();
  bool* syn = b.synthetic.data_ptr<bool>();
  int32_t* cu = b.cu_seqlens.data_ptr<int32_t>();
  int64_t at = 0, d = 0;
  for (const auto& row : rows)
    for (int64_t e : row) {
      const int64_t len = data.length(e);
      const uint32_t* src = data.tokens + data.offsets[e];
      cu[d] = static_cast<int32_t>(at);
      for (int64_t t = 0; t < len; ++t) {
        ids[at + t] = src[t];
        pos[at + t] = t;
        doc[at + t] = d;
      }
      document_targets(src, data.masks + data.offsets[e], len, tgt + at, syn + at);
      b.max_seqlen = std::max(b.max_seqlen, len);
      at += len;
      ++d;
    }
  cu[docs] = static_cast<int32_t>(total);
  b.target_tokens = b.targets.ne(kIgnoreIndex).sum().item<int64_t>();
  b.synthetic_target_tokens = b.synthetic.sum().item<int64_t>();
  b.examples = rows;
  return b;
}

}  // namespace mt
