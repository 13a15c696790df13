// Mapping speed on one core: parse + ORU^R01 -> FHIR R4 Bundle (with the lab
// domain records) + serialize, for a typical ~3 KB ORU with 10 OBX, and over
// the synthetic mixed set of oru_generator.h. Target (issue 4): at least
// 20,000 messages/s for the typical message.
// Link: bridge_v2_to_fhir benchmark::benchmark (bridge_hl7, bridge_fhir,
// absl and OpenSSL::Crypto come with bridge_v2_to_fhir).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/time/time.h"

#include "mapping/hl7/message.h"
#include "mapping/v2_to_fhir/converter.h"
#include "tests/bench/oru_generator.h"

namespace bridge::v2_to_fhir {
namespace {

// A typical hospital-lab ORU: CMP + CBC style results, 10 OBX, notes, SPM.
std::string TypicalOru() {
  std::string m =
      "MSH|^~\\&|SYNTH_LIS^2.16.840.1.113883.3.999^ISO|SYNTH_LAB^11D0000000^CLIA|LAB_BRIDGE|"
      "MPS_PMS|20260301083000-0500||ORU^R01^ORU_R01|BENCH-TYPICAL-0001|P|2.5.1|||NE|NE|USA|"
      "UNICODE UTF-8\r"
      "SFT|Synthetic Lab Systems|4.2.1|SynthLIS|4.2.1.77||20250101\r"
      "PID|1||100234^^^MPS_PMS^MR~900000123^^^SSA&2.16.840.1.113883.4.1&ISO^SS||"
      "Synthetic^Patricia^Anne^^^^L||19720415|F|||1200 Example Avenue^Apt 4B^Springfield^IL^"
      "62701^USA^H||^PRN^PH^^1^217^5550100|^WPN^PH^^1^217^5550199\r"
      "PV1|1|O|LAB^^^SYNTH_CLINIC||||1234567890^Welby^Marcus^^^Dr^^^NPI&2.16.840.1.113883.4.6&"
      "ISO^L^^^NPI\r"
      "ORC|RE|PL-778899^MPS_PMS|FL-445566^SYNTH_LAB||CM||||20260301070000-0500|||1234567890^"
      "Welby^Marcus^^^Dr^^^NPI&2.16.840.1.113883.4.6&ISO^L^^^NPI\r"
      "OBR|1|PL-778899^MPS_PMS|FL-445566^SYNTH_LAB|24323-8^Comprehensive metabolic panel^LN^"
      "CMP^Comprehensive Metabolic Panel^L|||20260301070000-0500|||||||||1234567890^Welby^"
      "Marcus^^^Dr^^^NPI&2.16.840.1.113883.4.6&ISO^L^^^NPI||||||20260301082500-0500|||F\r"
      "NTE|1|L|Specimen received at 07:42; processed within stability limits.\r";
  const char* rows[][6] = {
      {"2823-3", "Potassium [Moles/volume] in Serum or Plasma", "5.9", "mmol/L", "3.5-5.1", "H"},
      {"2951-2", "Sodium [Moles/volume] in Serum or Plasma", "139", "mmol/L", "136-145", "N"},
      {"2075-0", "Chloride [Moles/volume] in Serum or Plasma", "101", "mmol/L", "98-107", "N"},
      {"2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "24", "mmol/L", "22-29",
       "N"},
      {"3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "18", "mg/dL", "7-20", "N"},
      {"2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "1.42", "mg/dL", "0.60-1.30", "H"},
      {"2345-7", "Glucose [Mass/volume] in Serum or Plasma", "112", "mg/dL", "70-99", "H"},
      {"17861-6", "Calcium [Mass/volume] in Serum or Plasma", "9.4", "mg/dL", "8.6-10.3", "N"},
      {"1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "32",
       "U/L", "7-56", "N"},
      {"1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "29",
       "U/L", "10-40", "N"}};
  int i = 0;
  for (const auto& r : rows) {
    ++i;
    m += "OBX|" + std::to_string(i) + "|NM|" + r[0] + "^" + r[1] + "^LN||" + r[2] + "|" + r[3] +
         "^^UCUM|" + r[4] + "|" + r[5] +
         "|||F|||20260301070000-0500|||||20260301081500-0500||||SYNTH LAB^L^^^^CLIA&2.16.840.1."
         "113883.4.7&ISO^XX^^^11D0000000|100 Lab Way^^Springfield^IL^62701\r";
    if (i % 3 == 0) m += "NTE|1|L|Result verified by repeat analysis on a second instrument.\r";
  }
  m += "SPM|1|SP-5544&MPS_PMS^SF-5544&SYNTH_LAB||119364003^Serum specimen^SCT|||||||||||||"
       "20260301070000-0500|20260301074200-0500\r";
  return m;
}

ConvertOptions Options() {
  ConvertOptions o;
  o.now = absl::FromUnixSeconds(1772366400);
  o.source_message_id = "1";
  return o;
}

void BM_TypicalOruToBundle(benchmark::State& state) {
  const std::string bytes = TypicalOru();
  const ConvertOptions options = Options();
  hl7::Message message;
  std::size_t out_bytes = 0;
  for (auto _ : state) {
    if (!hl7::Message::ParseInto(bytes, {}, &message).ok()) state.SkipWithError("parse failed");
    absl::StatusOr<Conversion> c = ConvertOru(message, options);
    if (!c.ok()) state.SkipWithError("convert failed");
    out_bytes += c->bundle_json.size();
    benchmark::DoNotOptimize(c->bundle_json.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
  state.counters["msg_bytes"] = static_cast<double>(bytes.size());
  state.counters["bundle_bytes"] = static_cast<double>(out_bytes) /
                                   static_cast<double>(std::max<int64_t>(1, state.iterations()));
}
BENCHMARK(BM_TypicalOruToBundle);

// For comparison: the codec's part alone.
void BM_TypicalOruParseOnly(benchmark::State& state) {
  const std::string bytes = TypicalOru();
  hl7::Message message;
  for (auto _ : state) {
    if (!hl7::Message::ParseInto(bytes, {}, &message).ok()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(message.segment_count());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TypicalOruParseOnly);

void BM_MixedOrusToBundle(benchmark::State& state) {
  static const std::vector<std::string> messages = bench::GenerateOruSet(500);
  const ConvertOptions options = Options();
  hl7::Message message;
  std::size_t i = 0;
  std::size_t in_bytes = 0;
  for (auto _ : state) {
    const std::string& bytes = messages[i++ % messages.size()];
    in_bytes += bytes.size();
    if (!hl7::Message::ParseInto(bytes, {}, &message).ok()) state.SkipWithError("parse failed");
    absl::StatusOr<Conversion> c = ConvertOru(message, options);
    if (!c.ok()) state.SkipWithError("convert failed");
    benchmark::DoNotOptimize(c->bundle_json.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(in_bytes));
}
BENCHMARK(BM_MixedOrusToBundle);

}  // namespace
}  // namespace bridge::v2_to_fhir

BENCHMARK_MAIN();
