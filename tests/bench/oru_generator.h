// Deterministic synthetic ORU^R01 messages for benchmarks: 1-4 KB, 5-30 OBX,
// with escapes, repetitions and notes in realistic proportions. The same seed
// always gives the same bytes, so lab-bridge and the peers it is compared
// with parse identical input. No real patient data.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace bridge::bench {

inline std::string GenerateOru(std::mt19937_64& rng, int index) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  static const char* kTests[][4] = {{"2823-3", "Potassium", "mmol/L", "3.5-5.1"},
                                    {"2951-2", "Sodium", "mmol/L", "136-145"},
                                    {"2075-0", "Chloride", "mmol/L", "98-107"},
                                    {"2028-9", "CO2", "mmol/L", "22-29"},
                                    {"3094-0", "BUN", "mg/dL", "7-20"},
                                    {"2160-0", "Creatinine", "mg/dL", "0.6-1.3"},
                                    {"2345-7", "Glucose", "mg/dL", "70-99"},
                                    {"17861-6", "Calcium", "mg/dL", "8.6-10.3"},
                                    {"6690-2", "WBC", "10*3/uL", "4.5-11.0"},
                                    {"789-8", "RBC", "10*6/uL", "4.0-5.5"},
                                    {"718-7", "Hemoglobin", "g/dL", "12.0-16.0"},
                                    {"4544-3", "Hematocrit", "%", "36-46"},
                                    {"777-3", "Platelets", "10*3/uL", "150-400"},
                                    {"1742-6", "ALT", "U/L", "7-56"},
                                    {"1920-8", "AST", "U/L", "10-40"},
                                    {"6768-6", "ALP", "U/L", "44-147"}};
  const int tests = static_cast<int>(sizeof(kTests) / sizeof(kTests[0]));
  std::string m;
  m.reserve(4096);
  const std::string id = "BENCH" + std::to_string(index);
  m += "MSH|^~\\&|SYNTH_LIS^2.16.840.1.113883.3.999^ISO|SYNTH_LAB^11D0000000^CLIA|LAB_BRIDGE|"
       "MPS_PMS|20260301083000-0500||ORU^R01^ORU_R01|" +
       id + "|P|2.5.1|||NE|NE|USA|UNICODE UTF-8\r";
  m += "PID|1||" + std::to_string(100000 + index) + "^^^MPS_PMS^MR~" +
       std::to_string(900000000 + index) + "^^^SSA&2.16.840.1.113883.4.1&ISO^SS||Synthetic^Pat^" +
       "Q^^^^L||19" + std::to_string(40 + pick(0, 59)) + "0" + std::to_string(pick(1, 9)) + "1" +
       std::to_string(pick(0, 9)) + "|" + (pick(0, 1) ? "F" : "M") + "|||" +
       std::to_string(pick(1, 999)) + " Example Rd^Apt \\T\\ " + std::to_string(pick(1, 50)) +
       "^Springfield^IL^62701^USA^H||^PRN^PH^^1^217^5550100\r";
  m += "PV1|1|O|CLINIC^101^A|||||1234567890^Welby^Marcus^^^Dr^^^NPI&2.16.840.1.113883.4.6&ISO^L\r";
  m += "ORC|RE|PL" + id + "^MPS_PMS|FL" + id +
       "^SYNTH_LAB|||||||||1234567890^Welby^Marcus^^^Dr^^^"
       "NPI&2.16.840.1.113883.4.6&ISO^L\r";
  m += "OBR|1|PL" + id + "^MPS_PMS|FL" + id +
       "^SYNTH_LAB|24323-8^Comprehensive metabolic "
       "panel^LN^CMP^CMP^L|||20260301070000-0500|||||||||1234567890^Welby^Marcus^^^Dr^^^"
       "NPI&2.16.840.1.113883.4.6&ISO^L||||||20260301082500-0500|||F\r";
  if (pick(0, 3) == 0) {
    m += "NTE|1|L|Specimen received at 07:40 \\F\\ processed on analyser B\\.br\\No delay.\r";
  }
  const int obx_count = pick(5, 30);
  for (int i = 1; i <= obx_count; ++i) {
    const auto& t = kTests[pick(0, tests - 1)];
    const int kind = pick(0, 9);
    std::string n = std::to_string(i);
    if (kind < 7) {
      const char* flags[] = {"N", "N", "N", "H", "L", "HH", "LL"};
      m += "OBX|" + n + "|NM|" + t[0] + "^" + t[1] + "^LN||" + std::to_string(pick(1, 400)) + "." +
           std::to_string(pick(0, 9)) + "|" + t[2] + "^" + t[2] + "^UCUM|" + t[3] + "|" +
           flags[pick(0, 6)] +
           "|||F|||20260301070000-0500|11D0000000^Synthetic Lab^CLIA||"
           "ANALYZER-7||20260301082000-0500\r";
    } else if (kind < 9) {
      m += "OBX|" + n + "|CWE|" + t[0] + "^" + t[1] + "^LN||260385009^Negative^SCT~" +
           "N^Negative^HL70078|||N|||F|||20260301070000-0500\r";
    } else {
      m += "OBX|" + n + "|ST|" + t[0] + "^" + t[1] +
           "^LN||Result \\S\\ see note \\E\\ "
           "comment|||A|||F\r";
      m += "NTE|1|L|Verified by second analyst; repeat testing confirms the value.\\.br\\"
           "Reference intervals from the 2025 catalogue.\r";
    }
  }
  if (pick(0, 2) == 0) {
    m += "SPM|1|SP" + id +
         "&SYNTH_LAB||119297000^Blood specimen^SCT|||||||||||||"
         "20260301070000-0500|20260301074000-0500\r";
  }
  return m;
}

// `count` messages from `seed`.
inline std::vector<std::string> GenerateOruSet(int count, std::uint64_t seed = 2575) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> messages;
  messages.reserve(count);
  for (int i = 0; i < count; ++i) messages.push_back(GenerateOru(rng, i));
  return messages;
}

}  // namespace bridge::bench
