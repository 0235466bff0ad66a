// testing.hpp: a minimal test harness for the C++ test binaries (no third-party framework).
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace spxtest {

struct Case {
  const char* name;
  std::function<void()> fn;
};

inline std::vector<Case>& cases() {
  static std::vector<Case> c;
  return c;
}

inline int& failures() {
  static int f = 0;
  return f;
}

struct Register {
  Register(const char* name, std::function<void()> fn) { cases().push_back({name, std::move(fn)}); }
};

inline int run_all(const char* filter) {
  int ran = 0;
  for (auto& c : cases()) {
    if (filter && std::string(c.name).find(filter) == std::string::npos) continue;
    int before = failures();
    try {
      c.fn();
    } catch (const std::exception& e) {
      std::printf("FAIL %s: unexpected exception: %s\n", c.name, e.what());
      failures()++;
    }
    std::printf("%s %s\n", failures() == before ? "ok  " : "FAIL", c.name);
    ran++;
  }
  std::printf("%d tests, %d failures\n", ran, failures());
  return failures() ? 1 : 0;
}

}  // namespace spxtest

#define TEST(name) \
  static void name(); \
  static spxtest::Register reg_##name(#name, name); \
  static void name()

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);         \
      spxtest::failures()++;                                                          \
    }                                                                                 \
  } while (0)

#define CHECK_MSG(cond, ...)                                                          \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::printf("  %s:%d: ", __FILE__, __LINE__);                                   \
      std::printf(__VA_ARGS__);                                                       \
      std::printf("\n");                                                              \
      spxtest::failures()++;                                                          \
    }                                                                                 \
  } while (0)

// CHECK_THROWS runs stmt and checks it throws spx::Error whose message contains `part`.
#define CHECK_THROWS(stmt, part)                                                             \
  do {                                                                                       \
    bool threw_ = false;                                                                     \
    try {                                                                                    \
      stmt;                                                                                  \
    } catch (const spx::Error& e_) {                                                         \
      threw_ = true;                                                                         \
      if (std::string(e_.what()).find(part) == std::string::npos) {                          \
        std::printf("  %s:%d: error \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, e_.what(), part); \
        spxtest::failures()++;                                                               \
      }                                                                                      \
    }                                                                                        \
    if (!threw_) {                                                                           \
      std::printf("  %s:%d: %s did not throw\n", __FILE__, __LINE__, #stmt);                \
      spxtest::failures()++;                                                                 \
    }                                                                                        \
  } while (0)
