// One include for Catch2 v2 (Debian 12: catch2 2.13, single header) and v3 (GPU image: 3.4), so
// the same tests compile on both machines. Tests include this, never Catch2 directly.
// MT_HAS(s): the "message contains s" string matcher under either version.
#pragma once
#if __has_include(<catch2/catch_all.hpp>)
#include <catch2/catch_all.hpp>
#define MT_CATCH_V3 1
using Catch::Approx;  // v2 has it at global scope
#define MT_HAS(s) Catch::Matchers::ContainsSubstring(s)
#else
#include <catch2/catch.hpp>
#define MT_CATCH_V3 0
#define MT_HAS(s) Catch::Contains(s)
#endif
