#include "mapping/hl7/json.h"

#include <string>

#include "rapidjson/prettywriter.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace bridge::hl7 {
namespace {

template <typename Writer>
void WriteLeaf(const Element& e, Writer& w) {
  if (e.is_null()) {
    w.Null();
    return;
  }
  std::string_view v = e.value();
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

template <typename Writer>
void WriteField(const Element& field, Writer& w) {
  if (field.is_leaf()) {
    WriteLeaf(field, w);
    return;
  }
  w.StartArray();
  for (int r = 1; r <= field.size(); ++r) {
    Element rep = field.Rep(r);
    w.StartArray();
    for (int c = 1; c <= rep.size(); ++c) {
      Element comp = rep.Comp(c);
      if (comp.is_leaf()) {
        WriteLeaf(comp, w);
        continue;
      }
      w.StartArray();
      for (int s = 1; s <= comp.size(); ++s) WriteLeaf(comp.Sub(s), w);
      w.EndArray();
    }
    w.EndArray();
  }
  w.EndArray();
}

template <typename Writer>
void WriteMessage(const Message& m, Writer& w) {
  w.StartObject();
  w.Key("segments");
  w.StartArray();
  for (int s = 0; s < m.segment_count(); ++s) {
    SegmentRef segment = m.segment(s);
    w.StartObject();
    w.Key("name");
    w.String(segment.name().data(), static_cast<rapidjson::SizeType>(segment.name().size()));
    w.Key("fields");
    w.StartArray();
    for (int f = 1; f <= segment.field_count(); ++f) {
      Element field = segment.Field(f);
      if (s == 0 && f <= 2) {
        // MSH-1 and MSH-2 are never split or unescaped.
        std::string_view text = field.encoded();
        w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
      } else {
        WriteField(field, w);
      }
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace

std::string MessageToJson(const Message& message, bool pretty) {
  rapidjson::StringBuffer buffer;
  if (pretty) {
    rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buffer);
    writer.SetIndent(' ', 2);
    WriteMessage(message, writer);
  } else {
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    WriteMessage(message, writer);
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace bridge::hl7
