#include "mllp/frame_encoder.h"

namespace bridge::mllp {

std::string Frame(std::string_view payload) {
  std::string out;
  AppendFrame(payload, &out);
  return out;
}

void AppendFrame(std::string_view payload, std::string* out) {
  out->reserve(out->size() + payload.size() + 3);
  out->push_back(kStartBlock);
  out->append(payload);
  out->push_back(kEndBlock);
  out->push_back(kCarriageReturn);
}

bool IsFrameable(std::string_view payload) {
  return payload.find_first_of(std::string_view("\x0b\x1c", 2)) == std::string_view::npos;
}

}  // namespace bridge::mllp
