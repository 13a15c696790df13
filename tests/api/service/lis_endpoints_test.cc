// tests/api/service/lis_endpoints_test.cc
//
// lis_endpoints.json: the example in deploy/ loads, routing by test code,
// and every kind of bad file is refused naming the file and the problem.
#include "api/service/lis_endpoints.h"

#include <cstring>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

#include "tests/support/test_paths.h"

namespace bridge::api::service {
namespace {

const LisEndpointDefaults kDefaults{.ack_timeout = std::chrono::seconds(30), .max_attempts = 3};

std::string Refusal(const std::string& json) {
  absl::StatusOr<LisEndpoints> parsed = ParseLisEndpoints(json, "lis.json", kDefaults);
  EXPECT_FALSE(parsed.ok()) << json;
  if (parsed.ok()) {
    return "";
  }
  EXPECT_TRUE(absl::IsInvalidArgument(parsed.status()));
  return std::string(parsed.status().message());
}

constexpr char kMinimal[] =
    R"({"id": "lab", "host": "lis.example", "port": 2575, "receiving_application": "LIS",
        "receiving_facility": "LAB", "default": true)";

TEST(LisEndpointsTest, DeployExampleParses) {
  // The example names TLS files under /etc/lab-bridge/tls/: put files there
  // (in a temp folder) so only the JSON is being checked.
  std::string text = bridge::testing::ReadFileOrDie(bridge::testing::SourceDir() / "deploy" /
                                                    "lis_endpoints.json");
  bridge::testing::TempDir dir;
  for (const char* name :
       {"reference-lab-ca.pem", "lab-bridge-client.pem", "lab-bridge-client.key"}) {
    std::ofstream(dir.path() / name) << "placeholder";
  }
  for (std::size_t at; (at = text.find("/etc/lab-bridge/tls/")) != std::string::npos;) {
    text.replace(at, std::strlen("/etc/lab-bridge/tls/"), dir.path().string() + "/");
  }
  absl::StatusOr<LisEndpoints> parsed = ParseLisEndpoints(text, "lis_endpoints.json", kDefaults);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->endpoints.size(), 2u);
  EXPECT_TRUE(parsed->endpoints[0].tls.enabled);
  EXPECT_EQ(*parsed->Route({"CBC", "DIFF"}), "hospital-hematology");
  EXPECT_EQ(*parsed->Route({"BMP", "LIPID"}), "reference-lab");
  EXPECT_EQ(parsed->endpoints[1].flavor, fhir_to_v2::OrmOptions::Flavor::kOmlO21);
  EXPECT_EQ(parsed->endpoints[1].ack_timeout, std::chrono::seconds(20));
}

TEST(LisEndpointsTest, MinimalEntryGetsDefaults) {
  absl::StatusOr<LisEndpoints> parsed =
      ParseLisEndpoints(std::string(R"({"endpoints": [)") + kMinimal + "}]}", "lis.json",
                        {.ack_timeout = std::chrono::seconds(7), .max_attempts = 5});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const LisEndpoint& e = parsed->endpoints[0];
  EXPECT_EQ(e.port, 2575);
  EXPECT_FALSE(e.tls.enabled);
  EXPECT_EQ(e.flavor, fhir_to_v2::OrmOptions::Flavor::kOrmO01);
  EXPECT_EQ(e.version, "2.5.1");
  EXPECT_EQ(e.ack_timeout, std::chrono::seconds(7));  // ACK_TIMEOUT_SECONDS
  EXPECT_EQ(e.max_attempts, 5);                       // RETRY_MAX_ATTEMPTS
  EXPECT_FALSE(e.enhanced_ack);
  EXPECT_EQ(e.coding_system, "L");
}

TEST(LisEndpointsTest, ResultsFromALaboratoryGetItsMappingSettings) {
  absl::StatusOr<LisEndpoints> parsed =
      ParseLisEndpoints(std::string(R"({"endpoints": [)") + kMinimal +
                            R"(, "time_zone": "America/Chicago", "unit_map": {"mEq/l": "meq/L"},
             "code_systems": {"99LAB": "http://lab.example/codes"},
             "default_code_system": "http://lab.example/local"},
            {"id": "heme", "host": "h", "port": 1, "receiving_application": "H",
             "receiving_facility": "H", "test_codes": ["CBC"],
             "results_application": "HEME_RESULTS", "results_facility": "HEME_LAB"}]})",
                        "lis.json", kDefaults);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  // By default a laboratory's results come from its receiving app/facility.
  std::optional<v2_to_fhir::SenderSettings> lab = parsed->SenderSettingsFor("LIS", "LAB");
  ASSERT_TRUE(lab.has_value());
  ASSERT_TRUE(lab->time_zone.has_value());
  EXPECT_EQ(lab->time_zone->name(), "America/Chicago");
  EXPECT_EQ(lab->unit_map.at("mEq/l"), "meq/L");
  EXPECT_EQ(lab->code_systems.at("99LAB"), "http://lab.example/codes");
  EXPECT_EQ(lab->default_code_system, "http://lab.example/local");
  // Or from the names it says it sends results under.
  EXPECT_FALSE(parsed->SenderSettingsFor("H", "H").has_value());
  std::optional<v2_to_fhir::SenderSettings> heme =
      parsed->SenderSettingsFor("HEME_RESULTS", "HEME_LAB");
  ASSERT_TRUE(heme.has_value());
  EXPECT_EQ(heme->time_zone->name(), "UTC");
  EXPECT_TRUE(heme->unit_map.empty());
  EXPECT_FALSE(parsed->SenderSettingsFor("LIS", "OTHER").has_value());
  EXPECT_NE(Refusal(std::string(R"({"endpoints": [)") + kMinimal + R"(, "unit_map": ["x"]}]})")
                .find("endpoints[0].unit_map: expected an object"),
            std::string::npos);
  EXPECT_NE(
      Refusal(std::string(R"({"endpoints": [)") + kMinimal + R"(, "code_systems": {"L": ""}}]})")
          .find("endpoints[0].code_systems.L"),
      std::string::npos);
}

TEST(LisEndpointsTest, ACertificateMaySendOnlyAsItsLaboratory) {
  absl::StatusOr<LisEndpoints> parsed =
      ParseLisEndpoints(std::string(R"({"endpoints": [)") + kMinimal +
                            R"(, "client_certificate_names": ["lis-a.example"]},
            {"id": "heme", "host": "h", "port": 1, "receiving_application": "HEME",
             "receiving_facility": "HOSP", "test_codes": ["CBC"],
             "client_certificate_names": ["CN=heme,O=Hospital"]},
            {"id": "open", "host": "o", "port": 1, "receiving_application": "OPEN",
             "receiving_facility": "LAB", "test_codes": ["TSH"]}]})",
                        "lis.json", kDefaults);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const std::vector<std::string> lab_a = {"lis-a", "lis-a.example"};
  // Its own laboratory, by a subjectAltName or by the subject.
  EXPECT_TRUE(parsed->AuthorizeSender("LIS", "LAB", "CN=lis-a", lab_a).ok());
  EXPECT_TRUE(parsed->AuthorizeSender("HEME", "HOSP", "CN=heme,O=Hospital", {"heme"}).ok());
  // Another laboratory's names, a sender no endpoint knows, or no certificate.
  EXPECT_TRUE(absl::IsPermissionDenied(parsed->AuthorizeSender("HEME", "HOSP", "CN=lis-a", lab_a)));
  EXPECT_TRUE(absl::IsPermissionDenied(parsed->AuthorizeSender("OTHER", "X", "CN=lis-a", lab_a)));
  EXPECT_TRUE(absl::IsPermissionDenied(parsed->AuthorizeSender("LIS", "LAB", "", {})));
  // A laboratory that lists no certificates takes whoever the listener let in,
  // except a certificate that belongs to another laboratory.
  EXPECT_TRUE(parsed->AuthorizeSender("OPEN", "LAB", "CN=someone", {"someone"}).ok());
  EXPECT_TRUE(parsed->AuthorizeSender("OPEN", "LAB", "", {}).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(parsed->AuthorizeSender("OPEN", "LAB", "CN=lis-a", lab_a)));
  // Without certificate names anywhere, everything is allowed.
  absl::StatusOr<LisEndpoints> plain = ParseLisEndpoints(
      std::string(R"({"endpoints": [)") + kMinimal + "}]}", "lis.json", kDefaults);
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->AuthorizeSender("ANY", "ONE", "CN=x", {"x"}).ok());
  EXPECT_NE(Refusal(std::string(R"({"endpoints": [)") + kMinimal +
                    R"(, "client_certificate_names": []}]})")
                .find("endpoints[0].client_certificate_names: expected a non-empty array"),
            std::string::npos);
}

TEST(LisEndpointsTest, RoutesByTestCodeThenDefault) {
  absl::StatusOr<LisEndpoints> parsed = ParseLisEndpoints(
      std::string(R"({"endpoints": [)") + kMinimal +
          R"(}, {"id": "heme", "host": "h", "port": 1, "receiving_application": "H",
                 "receiving_facility": "H", "test_codes": ["CBC", "DIFF"]}]})",
      "lis.json", kDefaults);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed->Route({"CBC", "DIFF"}), "heme");
  EXPECT_EQ(*parsed->Route({"BMP"}), "lab");
  absl::StatusOr<std::string> mixed = parsed->Route({"CBC", "BMP"});
  ASSERT_FALSE(mixed.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(mixed.status()));

  absl::StatusOr<LisEndpoints> no_default = ParseLisEndpoints(
      R"({"endpoints": [{"id": "heme", "host": "h", "port": 1, "receiving_application": "H",
                         "receiving_facility": "H", "test_codes": ["CBC"]}]})",
      "lis.json", kDefaults);
  ASSERT_TRUE(no_default.ok());
  EXPECT_TRUE(absl::IsNotFound(no_default->Route({"BMP"}).status()));
  EXPECT_TRUE(absl::IsNotFound(LisEndpoints{}.Route({"BMP"}).status()));
}

TEST(LisEndpointsTest, BadFilesNameTheProblem) {
  const std::string head = R"({"endpoints": [)";
  EXPECT_NE(Refusal("{").find("lis.json: not valid JSON"), std::string::npos);
  EXPECT_NE(Refusal("[]").find("lis.json: top level"), std::string::npos);
  EXPECT_NE(Refusal("{}").find("endpoints: required"), std::string::npos);
  EXPECT_NE(Refusal(R"({"endpoint": []})").find("unknown field \"endpoint\""), std::string::npos);
  EXPECT_NE(Refusal(head + R"({"id": "a"}]})").find("endpoints[0].host: required"),
            std::string::npos);
  std::string entry = kMinimal;
  auto with = [&](const std::string& extra) { return head + entry + ", " + extra + "}]}"; };
  EXPECT_NE(Refusal(with(R"("hots": "x")")).find("endpoints[0]: unknown field \"hots\""),
            std::string::npos);
  EXPECT_NE(Refusal(head + R"({"id": "a", "host": "h", "port": 0, "receiving_application": "A",
                              "receiving_facility": "B", "default": true}]})")
                .find("endpoints[0].port: expected an integer 1-65535, got 0"),
            std::string::npos);
  EXPECT_NE(Refusal(with(R"("message_type": "ORM^O02")")).find("endpoints[0].message_type"),
            std::string::npos);
  EXPECT_NE(Refusal(with(R"("ack_mode": "fast")")).find("endpoints[0].ack_mode"),
            std::string::npos);
  EXPECT_NE(Refusal(with(R"("time_zone": "Mars/Olympus")")).find("unknown IANA time zone"),
            std::string::npos);
  EXPECT_NE(Refusal(with(R"("retry_max_attempts": 0)")).find("retry_max_attempts"),
            std::string::npos);
  EXPECT_NE(Refusal(with(R"("tls": {"ca_file": "/nonexistent/ca.pem"})"))
                .find("endpoints[0].tls.ca_file: cannot read \"/nonexistent/ca.pem\""),
            std::string::npos);
  EXPECT_NE(Refusal(with(R"("tls": {"cert_file": "/etc/hostname"})")).find("key_file"),
            std::string::npos);
  EXPECT_NE(Refusal(with(R"("message_type": "OML^O21", "version": "2.3")")).find("OML^O21"),
            std::string::npos);
  EXPECT_NE(Refusal(head + kMinimal + "}, " + kMinimal + "}]}").find("duplicate endpoint id"),
            std::string::npos);
  EXPECT_NE(Refusal(head + R"({"id": "a", "host": "h", "port": 1, "receiving_application": "A",
                              "receiving_facility": "B"}]})")
                .find("needs test_codes"),
            std::string::npos);
  EXPECT_NE(Refusal(head + R"({"id": "a", "host": "h", "port": 1, "receiving_application": "A",
                              "receiving_facility": "B", "test_codes": ["X"]},
                             {"id": "b", "host": "h", "port": 1, "receiving_application": "A",
                              "receiving_facility": "B", "test_codes": ["X"]}]})")
                .find("test \"X\" is listed by both \"a\" and \"b\""),
            std::string::npos);
  EXPECT_NE(Refusal(head + R"({"id": "a", "host": "h", "port": 1, "receiving_application": "A",
                              "receiving_facility": "B", "default": true},
                             {"id": "b", "host": "h", "port": 1, "receiving_application": "A",
                              "receiving_facility": "B", "default": true}]})")
                .find("at most one"),
            std::string::npos);
  EXPECT_NE(Refusal(head + R"({"id": "a b", "host": "h", "port": 1, "receiving_application": "A",
                              "receiving_facility": "B", "default": true}]})")
                .find("endpoints[0].id"),
            std::string::npos);
  EXPECT_NE(Refusal(head + R"({"id": "a", "host": "h", "port": 1, "receiving_application": "A|B",
                              "receiving_facility": "B", "default": true}]})")
                .find("receiving_application"),
            std::string::npos);
}

TEST(LisEndpointsTest, MissingFileIsEmptyOnlyWhenAllowed) {
  bridge::testing::TempDir dir;
  const std::string path = (dir.path() / "none.json").string();
  absl::StatusOr<LisEndpoints> empty = LoadLisEndpoints(path, kDefaults, true);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->endpoints.empty());
  absl::StatusOr<LisEndpoints> missing = LoadLisEndpoints(path, kDefaults, false);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(path), absl::string_view::npos);
  std::ofstream(path) << R"({"endpoints": []})";
  absl::StatusOr<LisEndpoints> none = LoadLisEndpoints(path, kDefaults, false);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->endpoints.empty());
}

}  // namespace
}  // namespace bridge::api::service
