// Paths and files that tests share: the repository's own fixtures, the
// shared third-party corpus (read in place, never copied into the repo), and
// per-test temporary folders.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace bridge::testing {

// The repository root (where CMakeLists.txt is).
std::filesystem::path SourceDir();

// The CMake build folder.
std::filesystem::path BinaryDir();

// `../shared/corpus` beside the repository, or $BRIDGE_CORPUS_DIR when set.
// nullopt when the folder is absent: corpus tests then GTEST_SKIP().
std::optional<std::filesystem::path> CorpusDir();

// True when the test command requires every third-party peer (node and the
// npm validators, python-hl7's tools, Chromium): BRIDGE_REQUIRE_PEERS or CI
// is set. A test that cannot find its peer then fails instead of skipping,
// so a broken install can never pass as a green run.
bool PeersRequired();

// Skips the current test for a missing third-party peer, or fails it when
// PeersRequired(). Used as a statement: `BRIDGE_PEER_MISSING("no node");`.
#define BRIDGE_PEER_MISSING(why)                                             \
  if (::bridge::testing::PeersRequired())                                    \
    GTEST_FAIL() << why << " (required: BRIDGE_REQUIRE_PEERS or CI is set)"; \
  else                                                                       \
    GTEST_SKIP() << why

// Every file under `dir` whose name ends with `suffix`, sorted.
std::vector<std::filesystem::path> FilesWithSuffix(const std::filesystem::path& dir,
                                                   const std::string& suffix);

// The whole file as bytes; fails the current test (ADD_FAILURE) when unreadable.
std::string ReadFileOrDie(const std::filesystem::path& path);

// A fresh empty folder under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace bridge::testing
