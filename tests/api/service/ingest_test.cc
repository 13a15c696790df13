// What Ingest stores for an ORU^R01 beyond the lab rows: the FHIR resources
// of the conversion, with a Provenance that names the message it came from.
#include "api/service/ingest.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <memory>
#include <string>

#include "api/service/event_bus.h"
#include "storage/store.h"
#include "tests/storage/store_fixture.h"
#include "tests/support/test_paths.h"

namespace bridge::api::service {
namespace {

using storage::testing::Backend;

class IngestTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgres && !storage::testing::PostgresDsn().has_value()) {
      if (storage::testing::PostgresRequired()) {
        FAIL() << "BRIDGE_TEST_PG_DSN is not set but PostgreSQL tests are required";
      }
      GTEST_SKIP() << "BRIDGE_TEST_PG_DSN not set";
    }
    db_ = std::make_unique<storage::testing::TestDatabase>(GetParam());
    storage::StoreOptions options;
    options.database_url = db_->url();
    absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::OpenStore(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  std::unique_ptr<storage::testing::TestDatabase> db_;
  std::unique_ptr<storage::Store> store_;
};

// MAPPING 6.1: the Provenance's entity (role source) is the raw message. The
// stored one must carry it, by the key the message's audit row is filed under,
// so an operator can go from any stored resource back to the HL7 it came from.
TEST_P(IngestTest, StoredProvenanceNamesTheSourceMessage) {
  EventBus bus;
  Ingest ingest(*store_, bus, {});
  const std::string oru = bridge::testing::ReadFileOrDie(bridge::testing::SourceDir() /
                                                         "tests/fixtures/hl7/guide_sample_oru.hl7");
  IngestPeer peer;
  peer.source_ip = "127.0.0.1";
  const IngestResult result = ingest.Handle(oru, peer);
  ASSERT_TRUE(result.stored) << result.error;
  EXPECT_EQ(result.ack_code, "AA");

  storage::FhirQuery query;
  query.resource_type = "Provenance";
  absl::StatusOr<storage::FhirPage> page = store_->SearchFhirResources(query);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->resources.size(), 1u);
  rapidjson::Document provenance;
  provenance.Parse(page->resources[0].resource.json.c_str());
  ASSERT_FALSE(provenance.HasParseError());
  ASSERT_TRUE(provenance.HasMember("entity")) << page->resources[0].resource.json;
  const rapidjson::Value& entity = provenance["entity"];
  ASSERT_TRUE(entity.IsArray());
  ASSERT_EQ(entity.Size(), 1u);
  EXPECT_STREQ(entity[0]["role"].GetString(), "source");
  const rapidjson::Value& identifier = entity[0]["what"]["identifier"];
  EXPECT_STREQ(identifier["value"].GetString(), "LAB_LIS|REFERENCE_LAB|MSG001");
  EXPECT_STREQ(identifier["system"].GetString(), "https://lab-bridge.local/fhir/sid/hl7-message");

  // The key finds exactly the audit row of this message.
  EXPECT_EQ(db_->RunSql("SELECT count(*) FROM hl7_messages WHERE sending_application = 'LAB_LIS' "
                        "AND sending_facility = 'REFERENCE_LAB' AND message_control_id = 'MSG001'"),
            "1");
}

INSTANTIATE_TEST_SUITE_P(Backends, IngestTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return storage::testing::BackendName(info.param);
                         });

}  // namespace
}  // namespace bridge::api::service
