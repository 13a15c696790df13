// Encoding messages to ER7: re-encoding a parsed Message, and building new
// messages (ACKs, orders) field by field with every value escaped.
//
//   std::string wire = Encode(message);   // CR after every segment
//
//   MessageBuilder b;                     // default delimiters |^~\&
//   b.Segment("MSH").Set(3, "LAB_BRIDGE").Set(9, 1, "ACK").Set(9, 2, "R01");
//   b.Segment("MSA").Set(1, "AA").Set(2, control_id);
//   std::string ack = b.Build();
//
// Pure and thread-compatible (a builder is used by one thread at a time).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mapping/hl7/delimiters.h"
#include "mapping/hl7/message.h"

namespace bridge::hl7 {

// The message in ER7 with CR segment terminators, in the character set it
// was read in (a message converted from ISO-8859-1 is written in ISO-8859-1
// again). For a CR-terminated input, Encode(Parse(x)) == x byte for byte; in
// every case Parse(Encode(m)) == m.
std::string Encode(const Message& message);

// The same in UTF-8, whatever the message's character set.
std::string EncodeUtf8(const Message& message);

// The message re-encoded with other delimiters: each value keeps its meaning,
// and characters that are delimiters under `to` are escaped.
std::string Encode(const Message& message, const Delimiters& to);

// Builds one message. Values given to Set() are plain text and are escaped;
// SetEncoded() takes text that is already ER7 for this builder's delimiters
// (for example a field echoed from a received message with the same ones).
// Trailing empty fields, repetitions and components are not written.
class MessageBuilder {
 public:
  class SegmentBuilder {
   public:
    // Field `field` (1-based; for MSH, field 3 is the first settable one).
    SegmentBuilder& Set(int field, std::string_view value);
    SegmentBuilder& Set(int field, int component, std::string_view value);
    SegmentBuilder& Set(int field, int component, int subcomponent, std::string_view value);
    // Repetition `repetition` (1-based) of a field.
    SegmentBuilder& SetRep(int field, int repetition, int component, int subcomponent,
                           std::string_view value);
    SegmentBuilder& SetEncoded(int field, std::string_view encoded);
    // The explicit HL7 null `""` in a field.
    SegmentBuilder& SetNull(int field);

   private:
    friend class MessageBuilder;
    using Component = std::vector<std::string>;  // subcomponents, encoded
    using Repetition = std::vector<Component>;
    using Field = std::vector<Repetition>;
    SegmentBuilder(std::string name, const Delimiters* delimiters)
        : name_(std::move(name)), delimiters_(delimiters) {}
    std::string& Slot(int field, int repetition, int component, int subcomponent);
    void AppendTo(std::string* out) const;

    std::string name_;
    const Delimiters* delimiters_;
    std::vector<Field> fields_;  // fields_[0] is field 1
  };

  explicit MessageBuilder(Delimiters delimiters = {}) : delimiters_(delimiters) {}
  MessageBuilder(const MessageBuilder&) = delete;
  MessageBuilder& operator=(const MessageBuilder&) = delete;

  // Appends a segment and returns it for setting fields. For "MSH", MSH-1
  // and MSH-2 are written from the delimiters. The reference stays valid
  // until Build().
  SegmentBuilder& Segment(std::string_view name);

  const Delimiters& delimiters() const { return delimiters_; }

  // The message in ER7, CR after every segment.
  std::string Build() const;

 private:
  Delimiters delimiters_;
  std::vector<std::unique_ptr<SegmentBuilder>> segments_;
};

}  // namespace bridge::hl7
