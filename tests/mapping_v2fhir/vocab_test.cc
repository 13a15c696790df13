// Table-driven tests of the inbound vocabulary maps (MAPPING.md section 8):
// one row per row of the specification's tables, so that deleting or
// changing a mapping fails here and not only in a golden Bundle.
#include "mapping/v2_to_fhir/vocab.h"

#include <optional>
#include <string_view>

#include "gtest/gtest.h"

namespace bridge::v2_to_fhir {
namespace {

struct Row {
  std::string_view v2;
  std::optional<std::string_view> fhir;  // nullopt: the table has no mapping
};

// 8.1 Table 0001 -> Patient.gender.
TEST(VocabularyTest, Table0001SexToGender) {
  const Row rows[] = {
      {"F", "female"}, {"M", "male"},  {"O", "other"},      {"U", "unknown"},
      {"A", "other"},  {"N", "other"}, {"X", std::nullopt}, {"", std::nullopt},
  };
  for (const Row& row : rows) {
    bool lenient = true;
    EXPECT_EQ(MapSex(row.v2, &lenient), row.fhir) << row.v2;
    EXPECT_FALSE(lenient) << row.v2;
  }
}

TEST(VocabularyTest, Table0001FullWordsAndLowerCaseAreLenient) {
  const Row rows[] = {
      {"Female", "female"}, {"female", "female"},   {"Male", "male"},
      {"MALE", "male"},     {"Unknown", "unknown"}, {"f", "female"},
  };
  for (const Row& row : rows) {
    bool lenient = false;
    EXPECT_EQ(MapSex(row.v2, &lenient), row.fhir) << row.v2;
    // Only an exact table code is a silent match; a word, even spelled like
    // FHIR's code, is "lenient word match + warning" (MAPPING 8.1).
    EXPECT_TRUE(lenient) << row.v2;
  }
  EXPECT_EQ(MapSex("Woman"), std::nullopt);
}

// 8.5 Table 0038 ORC-5 -> ServiceRequest.status.
TEST(VocabularyTest, Table0038OrderStatus) {
  const Row rows[] = {
      {"CA", "revoked"},   {"CM", "completed"},  {"DC", "revoked"},  {"ER", "entered-in-error"},
      {"HD", "on-hold"},   {"IP", "active"},     {"RP", "revoked"},  {"SC", "active"},
      {"A", "active"},  // some results available (LFH/MS; not in the IG)
      {"cm", "completed"}, {"ZZ", std::nullopt}, {"", std::nullopt},
  };
  for (const Row& row : rows) EXPECT_EQ(MapOrderStatus(row.v2), row.fhir) << row.v2;
}

// 8.6 Table 0119 ORC-1 -> ServiceRequest.status (used when ORC-5 is empty).
TEST(VocabularyTest, Table0119OrderControl) {
  const Row rows[] = {
      {"NW", "active"},
      {"CA", "active"},  // a cancel *request*: still active until CR (IG)
      {"CR", "revoked"},
      {"OC", "revoked"},
      {"DC", "revoked"},
      {"OD", "revoked"},
      {"DR", "revoked"},
      {"DF", "revoked"},
      {"HD", "active"},  // a hold *request*
      {"HR", "on-hold"},
      {"OH", "on-hold"},
      {"RL", "active"},
      {"OK", "active"},
      {"RO", "active"},
      {"RQ", "active"},
      {"PR", "active"},
      {"PY", "active"},
      {"AF", "active"},
      {"FU", "completed"},
      // D20 (docs/mapping-decisions.md): replies of MAPPING 9.2 that leave
      // the order active.
      {"OR", "active"},
      {"NA", "active"},
      {"SN", "active"},
      // No mapping: the status comes from ORC-5 / OBR-25 (MAPPING 5.3).
      {"RE", std::nullopt},
      {"SC", std::nullopt},
      {"XO", std::nullopt},
      {"XR", std::nullopt},
      {"XX", std::nullopt},
      {"UA", std::nullopt},
      {"UC", std::nullopt},
      {"", std::nullopt},
  };
  for (const Row& row : rows) EXPECT_EQ(MapOrderControl(row.v2), row.fhir) << row.v2;
}

// 8.7 Priority (table 0485) -> ServiceRequest.priority.
TEST(VocabularyTest, Table0485Priority) {
  const Row rows[] = {
      {"S", "stat"},         {"A", "asap"},       {"R", "routine"},    {"s", "stat"},
      {"P", std::nullopt},   {"C", std::nullopt}, {"T", std::nullopt}, {"TS1", std::nullopt},
      {"PRN", std::nullopt}, {"", std::nullopt},
  };
  for (const Row& row : rows) EXPECT_EQ(MapPriority(row.v2), row.fhir) << row.v2;
}

// MAPPING 8: codes match case-sensitively first, then case-insensitively
// with a warning; `lenient` tells the caller which.
TEST(VocabularyTest, OrderCodesMatchCaseInsensitivelyAsLenient) {
  bool lenient = true;
  EXPECT_EQ(MapOrderStatus("CM", &lenient), "completed");
  EXPECT_FALSE(lenient);
  EXPECT_EQ(MapOrderStatus("cm", &lenient), "completed");
  EXPECT_TRUE(lenient);
  EXPECT_EQ(MapOrderControl("OC", &lenient), "revoked");
  EXPECT_FALSE(lenient);
  EXPECT_EQ(MapOrderControl("oc", &lenient), "revoked");
  EXPECT_TRUE(lenient);
  EXPECT_EQ(MapPriority("S", &lenient), "stat");
  EXPECT_FALSE(lenient);
  EXPECT_EQ(MapPriority("s", &lenient), "stat");
  EXPECT_TRUE(lenient);
}

}  // namespace
}  // namespace bridge::v2_to_fhir
