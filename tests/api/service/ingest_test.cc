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

class IngestTest : public storage::testing::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    store_ = OpenTestStore();
    ASSERT_NE(store_, nullptr);
  }

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

// A known laboratory's settings (lis_endpoints.json) reach the mapping: its
// time zone for timestamps without an offset, its unit map for UCUM.
TEST_P(IngestTest, AKnownSendersTimeZoneAndUnitsAreUsed) {
  EventBus bus;
  IngestOptions options;
  options.sender_settings = [](std::string_view application, std::string_view facility) {
    std::optional<v2_to_fhir::SenderSettings> settings;
    if (application == "ZONE_LIS" && facility == "ZONE_LAB") {
      settings.emplace();
      absl::TimeZone chicago;
      EXPECT_TRUE(absl::LoadTimeZone("America/Chicago", &chicago));
      settings->time_zone = chicago;
      settings->unit_map["millimoles/litre"] = "mmol/L";
    }
    return settings;
  };
  Ingest ingest(*store_, bus, options);
  auto oru = [](const std::string& sender, const std::string& control_id,
                const std::string& value) {
    return "MSH|^~\\&|" + sender + "|PMS_LAB|MPS_PMS|20260115120000||ORU^R01|" + control_id +
           "|P|2.5.1\rPID|1||777^^^MPS_PMS^MR||Zone^Test||19700101|U\r"
           "OBR|1|ORD-" +
           control_id + "|FIL-" + control_id +
           "|BMP^Basic Metabolic Panel|||20260115093000\r"
           "OBX|1|NM|NA^Sodium||" +
           value + "|millimoles/litre|135-145|N|||F|||20260115093000\r";
  };
  auto observation = [&](const std::string& value) {
    storage::FhirQuery query;
    query.resource_type = "Observation";
    absl::StatusOr<storage::FhirPage> page = store_->SearchFhirResources(query);
    EXPECT_TRUE(page.ok()) << page.status();
    for (const storage::StoredFhirResource& r : page->resources) {
      if (r.resource.json.find("\"value\":" + value + ",") != std::string::npos) {
        return r.resource.json;
      }
    }
    ADD_FAILURE() << "no Observation with the value " << value;
    return std::string();
  };
  ASSERT_TRUE(ingest.Handle(oru("ZONE_LIS|ZONE_LAB", "Z1", "140"), {}).stored);
  ASSERT_TRUE(ingest.Handle(oru("OTHER_LIS|OTHER_LAB", "Z2", "141"), {}).stored);
  const std::string known = observation("140");
  EXPECT_NE(known.find("\"2026-01-15T09:30:00-06:00\""), std::string::npos) << known;
  EXPECT_NE(known.find("\"code\":\"mmol/L\""), std::string::npos) << known;
  const std::string unknown = observation("141");
  EXPECT_EQ(unknown.find("-06:00"), std::string::npos) << unknown;
  EXPECT_EQ(unknown.find("\"code\":\"mmol/L\""), std::string::npos) << unknown;
}

INSTANTIATE_TEST_SUITE_P(Backends, IngestTest,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return storage::testing::BackendName(info.param);
                         });

}  // namespace
}  // namespace bridge::api::service
