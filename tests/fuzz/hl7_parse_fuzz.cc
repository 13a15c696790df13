// libFuzzer target for the codec: any bytes in. Whatever parses must encode,
// re-parse to an equal message, group, render as JSON and be acknowledged;
// whatever does not parse must still get a well-formed NAK. Built with
// ASan + UBSan by deploy/test.sh and run for a bounded time.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mapping/hl7/ack.h"
#include "mapping/hl7/batch.h"
#include "mapping/hl7/encoder.h"
#include "mapping/hl7/json.h"
#include "mapping/hl7/message.h"
#include "mapping/hl7/oru.h"

namespace {

void CheckAt(bool condition, int line) {
  if (!condition) {
    std::fprintf(stderr, "hl7_parse_fuzz: check at line %d failed\n", line);
    std::abort();
  }
}
#define Check(condition) CheckAt((condition), __LINE__)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace bridge::hl7;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const AckSpec spec{.control_id = "FUZZ1", .timestamp = "20260101000000+0000"};

  absl::StatusOr<Message> message = Message::Parse(bytes);
  if (message.ok()) {
    const std::string wire = Encode(*message);
    absl::StatusOr<Message> again = Message::Parse(wire);
    Check(again.ok());
    Check(*again == *message);
    OruR01 oru = GroupOruR01(*message);
    (void)oru;
    Check(!MessageToJson(*message, false).empty());
    (void)ValidateHeader(*message, {});
    Check(Message::Parse(BuildAck(&*message, bytes, absl::OkStatus(), spec)).ok());
    for (int s = 0; s < message->segment_count(); ++s) {
      SegmentRef segment = message->segment(s);
      for (int f = 1; f <= segment.field_count(); ++f) {
        Element field = segment.Field(f);
        for (int r = 1; r <= field.size(); ++r) {
          Element rep = field.Rep(r);
          for (int c = 1; c <= rep.size(); ++c) (void)rep.Comp(c).Sub(1).value();
        }
      }
    }
  } else {
    Check(Message::Parse(BuildAck(nullptr, bytes, message.status(), spec)).ok());
  }
  (void)PeekControlId(bytes);

  // The splitter must give the same messages whatever the chunking.
  std::string whole;
  std::string chunked;
  MessageSplitter a;
  MessageSplitter b;
  auto into = [](std::string* out) {
    return [out](const SplitMessage& m) {
      out->append(m.bytes);
      out->push_back('\n');
    };
  };
  a.Feed(bytes, into(&whole));
  a.Finish(into(&whole));
  const std::size_t step = size % 7 + 1;
  for (std::size_t i = 0; i < size; i += step) b.Feed(bytes.substr(i, step), into(&chunked));
  b.Finish(into(&chunked));
  Check(whole == chunked);
  return 0;
}
