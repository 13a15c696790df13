// The shared third-party corpus (../shared/corpus, read in place; skipped
// when absent): every ORU^R01 in it converts, its Bundle validates with
// @medplum/core, no OBX is lost silently, and for the messages with a
// converter's `.expected.json` beside them the clinically meaningful content
// matches, except for the differences listed with a reason in
// docs/mapping-decisions.md (checked by crosscheck.mjs).
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "mapping/hl7/batch.h"
#include "mapping/hl7/message.h"
#include "mapping/v2_to_fhir/converter.h"
#include "tests/mapping_v2fhir/test_util.h"
#include "tests/support/test_paths.h"

namespace bridge::v2_to_fhir {
namespace {

namespace fs = std::filesystem;
using bridge::testing::CorpusDir;
using bridge::testing::FilesWithSuffix;
using bridge::testing::ReadFileOrDie;

struct CorpusOru {
  fs::path file;
  int index = 0;  // message number within the file (batches)
  std::string bytes;
};

std::vector<CorpusOru> CorpusOrus(const fs::path& corpus) {
  std::vector<CorpusOru> out;
  for (const fs::path& file : FilesWithSuffix(corpus, ".hl7")) {
    const std::string data = ReadFileOrDie(file);
    hl7::MessageSplitter splitter;
    auto on_message = [&](const hl7::SplitMessage& m) {
      if (m.is_stray) return;
      const std::optional<std::string> type = hl7::PeekHeaderField(m.bytes, 9);
      if (!type.has_value() || type->rfind("ORU", 0) != 0) return;
      out.push_back({file, static_cast<int>(m.index), std::string(m.bytes)});
    };
    splitter.Feed(data, on_message);
    splitter.Finish(on_message);
  }
  return out;
}

std::string Name(const CorpusOru& oru) {
  return oru.file.stem().string() + (oru.index > 0 ? "#" + std::to_string(oru.index) : "");
}

TEST(V2ToFhirCorpusTest, EveryOruConvertsLosesNoObxAndValidates) {
  const std::optional<fs::path> corpus = CorpusDir();
  if (!corpus.has_value()) GTEST_SKIP() << "../shared/corpus not present";
  const std::vector<CorpusOru> orus = CorpusOrus(*corpus);
  ASSERT_GE(orus.size(), 20u) << "expected the corpus's ORU^R01 messages";
  bridge::testing::TempDir dir;
  std::vector<fs::path> bundles;
  for (const CorpusOru& oru : orus) {
    SCOPED_TRACE(Name(oru));
    absl::StatusOr<hl7::Message> message = hl7::Message::Parse(oru.bytes);
    ASSERT_TRUE(message.ok()) << message.status();
    absl::StatusOr<Conversion> c = ConvertOru(*message, testing::GoldenOptions());
    if (!c.ok()) {
      // Only a message with no OBR at all may be refused (AE).
      EXPECT_EQ(message->Segment("OBR"), std::nullopt) << c.status();
      continue;
    }
    // No silent loss: each OBX is an Observation/rule-T row or is reported.
    std::set<std::string> accounted;
    for (const ResultRecord& r : c->domain.results) accounted.insert(r.segment);
    for (const UnmappedItem& item : c->report.items) accounted.insert(item.location);
    std::map<std::string, int> occurrences;
    for (int i = 0; i < message->segment_count(); ++i) {
      const std::string name(message->segment(i).name());
      const int occ = ++occurrences[name];
      if (name != "OBX") continue;
      const std::string loc = "OBX(" + std::to_string(occ) + ")";
      EXPECT_TRUE(accounted.count(loc) > 0) << loc << " neither mapped nor reported";
    }
    const fs::path out = dir.path() / (Name(oru) + ".json");
    std::ofstream(out) << c->bundle_json;
    bundles.push_back(out);
  }
  if (!testing::ValidatorAvailable()) {
    BRIDGE_PEER_MISSING("node / @medplum/core not installed");
  }
  std::string output;
  EXPECT_EQ(testing::RunValidator(bundles, &output), 0) << output;
  // The validator's last line: "<valid>/<total> valid".
  std::cout << "corpus: " << orus.size() << " ORU^R01, "
            << output.substr(output.rfind('\n', output.size() - 2) + 1);
}

TEST(V2ToFhirCorpusTest, MatchesOtherConvertersExceptDocumentedDecisions) {
  const std::optional<fs::path> corpus = CorpusDir();
  if (!corpus.has_value()) GTEST_SKIP() << "../shared/corpus not present";
  if (!testing::ValidatorAvailable()) {
    BRIDGE_PEER_MISSING("node / @medplum/core not installed");
  }
  bridge::testing::TempDir dir;
  const fs::path pairs = dir.path() / "pairs.txt";
  int count = 0;
  {
    std::ofstream list(pairs);
    for (const CorpusOru& oru : CorpusOrus(*corpus)) {
      const fs::path expected =
          oru.file.parent_path() / (oru.file.stem().string() + ".expected.json");
      if (oru.index > 0 || !fs::exists(expected)) continue;
      absl::StatusOr<Conversion> c = ConvertOruText(oru.bytes, testing::GoldenOptions());
      const fs::path ours = dir.path() / (Name(oru) + ".json");
      if (c.ok()) {
        std::ofstream(ours) << c->bundle_json;
      } else {
        // Refused (no OBR): crosscheck.mjs reports "<name>/refused".
        std::ofstream(ours) << "{\"refused\":true}";
      }
      list << Name(oru) << "\t" << ours.string() << "\t" << expected.string() << "\n";
      ++count;
    }
  }
  ASSERT_GE(count, 5);
  const fs::path source = bridge::testing::SourceDir();
  const std::string command = "cd '" + (source / "tests").string() +
                              "' && node mapping_v2fhir/crosscheck.mjs '" + pairs.string() + "' '" +
                              (source / "docs/mapping-decisions.md").string() + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int status = pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
}

}  // namespace
}  // namespace bridge::v2_to_fhir
