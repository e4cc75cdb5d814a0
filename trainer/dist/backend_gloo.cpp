// c10d::ProcessGroupGloo over the rendezvous store: CPU collectives over TCP. The wheel's libtorch
// exports ProcessGroupGloo; its gloo/ headers come from Debian's libgloo-dev (CMake defines
// MT_HAVE_GLOO for this file only where they were found).
#include "trainer/dist/backends.h"

#include <cstdlib>
#include <string>

#include "models/error.h"

#ifdef MT_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

namespace mt {

#ifdef MT_HAVE_GLOO
c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  // As torch.distributed: the interface GLOO_SOCKET_IFNAME names, else this host's address.
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  options->devices.push_back(ifname != nullptr && *ifname != '\0'
                                 ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                                 : c10d::ProcessGroupGloo::createDefaultDevice());
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}
#else
c10::intrusive_ptr<c10d::Backend> make_gloo_backend(const c10::intrusive_ptr<c10d::Store>&, int, int,
                                                    std::chrono::milliseconds) {
  throw Error("distributed.backend gloo: this build has no Gloo backend (the gloo headers were not found when it was "
              "configured: install libgloo-dev and re-run scripts/build.sh)");
}
#endif

}  // namespace mt
