#include "mapping/hl7/encoder.h"

#include <string>

#include "mapping/hl7/charset.h"
#include "mapping/hl7/escape.h"

namespace bridge::hl7 {
namespace {

char SeparatorBelow(Level level, const Delimiters& d) {
  switch (level) {
    case Level::kField:
      return d.repetition;
    case Level::kRepetition:
      return d.component;
    default:
      return d.subcomponent;
  }
}

void EncodeElement(const Element& e, const Delimiters& from, const Delimiters& to,
                   std::string* out) {
  const int n = e.size();
  if (e.is_leaf()) {
    // A leaf: its encoded text, with escapes rewritten when delimiters differ.
    if (from == to) {
      out->append(e.encoded());
    } else {
      TranscodeTo(e.encoded(), from, to, out);
    }
    return;
  }
  const char separator = SeparatorBelow(e.level(), to);
  for (int i = 1; i <= n; ++i) {
    if (i > 1) out->push_back(separator);
    Element child = e.level() == Level::kField        ? e.Rep(i)
                    : e.level() == Level::kRepetition ? e.Comp(i)
                                                      : e.Sub(i);
    EncodeElement(child, from, to, out);
  }
}

}  // namespace

std::string Encode(const Message& message, const Delimiters& to) {
  std::string out;
  out.reserve(message.text().size() + 16);
  const Delimiters& from = message.delimiters();
  for (int s = 0; s < message.segment_count(); ++s) {
    SegmentRef segment = message.segment(s);
    out.append(segment.name());
    int first = 1;
    if (s == 0) {
      out.push_back(to.field);
      out.append(to.EncodingCharacters());
      first = 3;
    }
    for (int f = first; f <= segment.field_count(); ++f) {
      out.push_back(to.field);
      EncodeElement(segment.Field(f), from, to, &out);
    }
    out.push_back('\r');
  }
  return out;
}

std::string Encode(const Message& message) {
  std::string utf8 = EncodeUtf8(message);
  if (message.charset().converted_from.empty()) return utf8;
  // The text came from these bytes, so it converts back.
  absl::StatusOr<std::string> bytes = FromUtf8(utf8, message.charset());
  return bytes.ok() ? *std::move(bytes) : utf8;
}

std::string EncodeUtf8(const Message& message) {
  // MSH-2 is written back exactly as received (it may legitimately differ
  // from the cleaned-up delimiters, as in the `^~\\&` case).
  std::string out;
  out.reserve(message.text().size() + 16);
  const Delimiters& d = message.delimiters();
  for (int s = 0; s < message.segment_count(); ++s) {
    SegmentRef segment = message.segment(s);
    out.append(segment.name());
    int first = 1;
    if (s == 0) {
      out.push_back(d.field);
      out.append(segment.Field(2).encoded());
      first = 3;
    }
    for (int f = first; f <= segment.field_count(); ++f) {
      out.push_back(d.field);
      EncodeElement(segment.Field(f), d, d, &out);
    }
    out.push_back('\r');
  }
  return out;
}

// ---------------------------------------------------------------------------
// MessageBuilder

MessageBuilder::SegmentBuilder& MessageBuilder::Segment(std::string_view name) {
  segments_.push_back(
      std::unique_ptr<SegmentBuilder>(new SegmentBuilder(std::string(name), &delimiters_)));
  return *segments_.back();
}

std::string& MessageBuilder::SegmentBuilder::Slot(int field, int repetition, int component,
                                                  int subcomponent) {
  if (field < 1) field = 1;
  if (repetition < 1) repetition = 1;
  if (component < 1) component = 1;
  if (subcomponent < 1) subcomponent = 1;
  if (fields_.size() < static_cast<std::size_t>(field)) fields_.resize(field);
  Field& f = fields_[field - 1];
  if (f.size() < static_cast<std::size_t>(repetition)) f.resize(repetition);
  Repetition& r = f[repetition - 1];
  if (r.size() < static_cast<std::size_t>(component)) r.resize(component);
  Component& c = r[component - 1];
  if (c.size() < static_cast<std::size_t>(subcomponent)) c.resize(subcomponent);
  return c[subcomponent - 1];
}

MessageBuilder::SegmentBuilder& MessageBuilder::SegmentBuilder::Set(int field,
                                                                    std::string_view value) {
  return SetRep(field, 1, 1, 1, value);
}

MessageBuilder::SegmentBuilder& MessageBuilder::SegmentBuilder::Set(int field, int component,
                                                                    std::string_view value) {
  return SetRep(field, 1, component, 1, value);
}

MessageBuilder::SegmentBuilder& MessageBuilder::SegmentBuilder::Set(int field, int component,
                                                                    int subcomponent,
                                                                    std::string_view value) {
  return SetRep(field, 1, component, subcomponent, value);
}

MessageBuilder::SegmentBuilder& MessageBuilder::SegmentBuilder::SetRep(int field, int repetition,
                                                                       int component,
                                                                       int subcomponent,
                                                                       std::string_view value) {
  std::string& slot = Slot(field, repetition, component, subcomponent);
  slot.clear();
  EscapeTo(value, *delimiters_, &slot);
  return *this;
}

MessageBuilder::SegmentBuilder& MessageBuilder::SegmentBuilder::SetEncoded(
    int field, std::string_view encoded) {
  if (field < 1) field = 1;
  if (fields_.size() < static_cast<std::size_t>(field)) fields_.resize(field);
  // Stored as one opaque leaf: it is written back exactly.
  fields_[field - 1] = Field{Repetition{Component{std::string(encoded)}}};
  return *this;
}

MessageBuilder::SegmentBuilder& MessageBuilder::SegmentBuilder::SetNull(int field) {
  return SetEncoded(field, "\"\"");
}

void MessageBuilder::SegmentBuilder::AppendTo(std::string* out) const {
  const Delimiters& d = *delimiters_;
  out->append(name_);
  std::size_t first = 0;
  if (name_ == "MSH") {
    out->push_back(d.field);
    out->append(d.EncodingCharacters());
    first = 2;  // fields_[0] and [1] would be MSH-1 and MSH-2
  }
  // Everything after the last non-empty element at each level is dropped.
  auto trim = [](auto& items, auto is_empty) {
    std::size_t n = items.size();
    while (n > 0 && is_empty(items[n - 1])) --n;
    return n;
  };
  auto component_empty = [&](const Component& c) {
    return trim(c, [](const std::string& s) { return s.empty(); }) == 0;
  };
  auto repetition_empty = [&](const Repetition& r) { return trim(r, component_empty) == 0; };
  auto field_empty = [&](const Field& f) { return trim(f, repetition_empty) == 0; };
  const std::size_t field_count = trim(fields_, field_empty);
  for (std::size_t fi = first; fi < field_count; ++fi) {
    out->push_back(d.field);
    const Field& field = fields_[fi];
    const std::size_t reps = trim(field, repetition_empty);
    for (std::size_t ri = 0; ri < reps; ++ri) {
      if (ri > 0) out->push_back(d.repetition);
      const Repetition& rep = field[ri];
      const std::size_t comps = trim(rep, component_empty);
      for (std::size_t ci = 0; ci < comps; ++ci) {
        if (ci > 0) out->push_back(d.component);
        const Component& comp = rep[ci];
        const std::size_t subs = trim(comp, [](const std::string& s) { return s.empty(); });
        for (std::size_t si = 0; si < subs; ++si) {
          if (si > 0) out->push_back(d.subcomponent);
          out->append(comp[si]);
        }
      }
    }
  }
}

std::string MessageBuilder::Build() const {
  std::string out;
  for (const auto& segment : segments_) {
    segment->AppendTo(&out);
    out.push_back('\r');
  }
  return out;
}

}  // namespace bridge::hl7
