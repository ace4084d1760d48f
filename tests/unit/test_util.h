// Helpers shared by the unit tests: a temporary folder per test and an assertion on the text of
// a basin::Error.
#pragma once

#include "basin/core/error.h"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>

namespace basin::testing {

class TempDir {
  public:
    TempDir() {
        auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        path_ = std::filesystem::temp_directory_path() /
                ("basin-test-" + std::to_string(::getpid()) + "-" + info->test_suite_name() + "-" + info->name());
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
}

// The message of the basin::Error that fn throws ("" and a test failure if it throws none).
template <typename Fn> std::string error_of(Fn&& fn) {
    try {
        fn();
    } catch (const basin::Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected a basin::Error";
    return "";
}

} // namespace basin::testing

#define EXPECT_ERROR_CONTAINS(statement, ...)                                                                          \
    do {                                                                                                               \
        const std::string message_ = ::basin::testing::error_of([&] { statement; });                                   \
        for (const char* part_ : {__VA_ARGS__})                                                                        \
            EXPECT_NE(message_.find(part_), std::string::npos)                                                         \
                << "error message: " << message_ << "\nexpected to contain: " << part_;                                \
    } while (0)
