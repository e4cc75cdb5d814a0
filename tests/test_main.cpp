// Catch2 entry point shared by both test binaries (v2 needs CATCH_CONFIG_RUNNER before the include).
#define CATCH_CONFIG_RUNNER
#include "tests/catch_compat.h"

int main(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }
