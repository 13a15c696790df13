#include "tests/support/test_paths.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace bridge::testing {

std::filesystem::path SourceDir() { return BRIDGE_SOURCE_DIR; }

std::filesystem::path BinaryDir() { return BRIDGE_BINARY_DIR; }

bool PeersRequired() {
  return getenv("BRIDGE_REQUIRE_PEERS") != nullptr || getenv("CI") != nullptr;
}

std::optional<std::filesystem::path> CorpusDir() {
  std::filesystem::path dir;
  if (const char* env = std::getenv("BRIDGE_CORPUS_DIR"); env != nullptr && *env != '\0') {
    dir = env;
  } else {
    dir = SourceDir().parent_path() / "shared" / "corpus";
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return std::nullopt;
  }
  return dir;
}

std::vector<std::filesystem::path> FilesWithSuffix(const std::filesystem::path& dir,
                                                   const std::string& suffix) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_regular_file() && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      files.push_back(it->path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadFileOrDie(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return {};
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

TempDir::TempDir() {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "lab-bridge-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for " << pattern;
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace bridge::testing
