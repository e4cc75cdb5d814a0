// The rendezvous, the backend and the collectives of a process group (see process_group.h).
#include "trainer/dist/process_group.h"

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "models/error.h"
#include "trainer/dist/backends.h"
#include "trainer/dist/distributed.h"

namespace mt {

namespace {

// c10::Error's what() carries a C++ backtrace; the message alone is what a user needs.
std::string message_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

// torchrun's agent already serves a store at MASTER_ADDR:MASTER_PORT and says so in
// TORCHELASTIC_USE_AGENT_STORE; then every rank is a client (as torch.distributed does).
bool agent_serves_store() {
  const char* v = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  return v != nullptr && std::strcmp(v, "True") == 0;
}

c10::intrusive_ptr<c10d::Store> connect_store(const DistEnv& env, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(env.master_port);
  o.isServer = env.rank == 0 && !agent_serves_store();
  o.numWorkers = static_cast<size_t>(env.world_size);
  o.waitWorkers = false;  // the backend's own rendezvous waits for every rank (with the timeout)
  o.timeout = timeout;
  o.multiTenant = true;
  try {
    return c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
  } catch (const std::exception& e) {
    if (o.isServer)
      throw Error(fmt::format("distributed: rank 0 cannot serve the rendezvous on MASTER_PORT={} (is the port in use "
                              "by another job? choose another MASTER_PORT): {}",
                              env.master_port, message_of(e)));
    throw Error(fmt::format("distributed: rank {} cannot reach the rendezvous at MASTER_ADDR:MASTER_PORT = {}:{} "
                            "within {} s: {}",
                            env.rank, env.master_addr, env.master_port, timeout.count() / 1000, message_of(e)));
  }
}

}  // namespace

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;  // our keys only (a prefix in the rendezvous store)
  c10::intrusive_ptr<c10d::Backend> backend;
  c10::Device device = c10::kCPU;
};

ProcessGroup::ProcessGroup(const DistEnv& env, const std::string& backend, c10::Device device, int64_t timeout_s)
    : impl_(std::make_unique<Impl>()),
      backend_(backend),
      rank_(env.rank),
      world_size_(env.world_size),
      timeout_s_(timeout_s) {
  const std::chrono::milliseconds timeout(timeout_s * 1000);
  impl_->store = c10::make_intrusive<c10d::PrefixStore>("maintune", connect_store(env, timeout));
  impl_->device = device;
  const int rank = static_cast<int>(env.rank), size = static_cast<int>(env.world_size);
  try {
    // `backend` comes from resolve_backend: gloo or nccl.
    if (backend == "gloo") {
      impl_->backend = make_gloo_backend(c10::make_intrusive<c10d::PrefixStore>("gloo", impl_->store), rank, size, timeout);
    } else {
      impl_->backend =
          make_nccl_backend(c10::make_intrusive<c10d::PrefixStore>("nccl", impl_->store), rank, size, timeout, device);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail(fmt::format("connecting the {} backend", backend), e);
  }
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::fail(const std::string& what, const std::exception& e) const {
  throw Error(fmt::format("distributed: {} failed on rank {} of {} ({}; another rank died, failed, or did not answer "
                          "within distributed.timeout_s = {} s): {}",
                          what, rank_, world_size_, backend_, timeout_s_, message_of(e)));
}

std::function<void()> ProcessGroup::start_all_reduce_sum(at::Tensor t, const std::string& what) {
  std::vector<at::Tensor> tensors{std::move(t)};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = impl_->backend->allreduce(tensors, opts);
  } catch (const std::exception& e) {
    fail("all-reduce of " + what, e);
  }
  return [this, work, what]() {
    try {
      work->wait();
    } catch (const std::exception& e) {
      fail("all-reduce of " + what, e);
    }
  };
}

void ProcessGroup::all_reduce_sum(at::Tensor& t, const std::string& what) {
  const bool via_device = impl_->device != t.device();
  at::Tensor x = via_device ? t.to(impl_->device) : t.contiguous();
  start_all_reduce_sum(x, what)();
  if (via_device || !x.is_same(t)) t.copy_(x);
}

std::vector<std::string> ProcessGroup::all_gather_text(const std::string& what, const std::string& mine) {
  const std::string key = fmt::format("exchange/{}/", exchanges_++);
  std::vector<std::string> all;
  try {
    impl_->store->set(key + std::to_string(rank_), std::vector<uint8_t>(mine.begin(), mine.end()));
    for (int64_t r = 0; r < world_size_; ++r) {
      const std::vector<uint8_t> v = impl_->store->get(key + std::to_string(r));
      all.emplace_back(v.begin(), v.end());
    }
  } catch (const std::exception& e) {
    fail("exchanging " + what, e);
  }
  return all;
}

std::string ProcessGroup::broadcast_text(const std::string& what, const std::string& text) {
  const std::string key = fmt::format("exchange/{}/0", exchanges_++);
  try {
    if (rank_ == 0) impl_->store->set(key, std::vector<uint8_t>(text.begin(), text.end()));
    const std::vector<uint8_t> v = impl_->store->get(key);
    return std::string(v.begin(), v.end());
  } catch (const std::exception& e) {
    fail("receiving " + what + " from rank 0", e);
  }
}

}  // namespace mt
