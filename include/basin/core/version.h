// basin's version: CMakeLists.txt's PROJECT_VERSION, passed as BASIN_VERSION to the files that
// print or record it (cli/program.cpp, train/finetune.cpp, train/pretrain.cpp).
#pragma once

#ifndef BASIN_VERSION
#error                                                                                                                 \
    "BASIN_VERSION is set by CMakeLists.txt from PROJECT_VERSION for the files that include basin/core/version.h; add this file there"
#endif

namespace basin {
inline constexpr const char* kVersion = BASIN_VERSION;
} // namespace basin
