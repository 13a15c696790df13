// libFuzzer target for escaping: decoding any text terminates without
// overflow, and escaping then decoding gives back the text for any input
// without CR (CR becomes a line break by design).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mapping/hl7/escape.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace bridge::hl7;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Delimiters d;
  if (size > 0 && data[0] == '#') d.truncation = '#';
  std::string decoded;
  UnescapeTo(text, d, {}, &decoded);
  UnescapeTo(text, d, {.keep_highlighting = true}, &decoded);
  if (text.find('\r') == std::string_view::npos) {
    std::string back;
    UnescapeTo(Escape(text, d), d, {}, &back);
    if (back != text) std::abort();
  }
  std::string transcoded;
  TranscodeTo(text, d, Delimiters{.field = '$', .component = '%', .escape = '!'}, &transcoded);
  return 0;
}
