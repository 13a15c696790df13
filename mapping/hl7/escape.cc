#include "mapping/hl7/escape.h"

#include <cstddef>
#include <string>

namespace bridge::hl7 {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses the optional count of `.sp n`, `.in n` etc.; `rest` is what follows
// the two-letter command. Returns -1 when it is not a number.
int FormattingCount(std::string_view rest, int default_count) {
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.empty()) return default_count;
  bool negative = false;
  if (rest.front() == '+' || rest.front() == '-') {
    negative = rest.front() == '-';
    rest.remove_prefix(1);
  }
  if (rest.empty() || rest.size() > 4) return -1;
  int n = 0;
  for (char c : rest) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return negative ? 0 : n;
}

// Decodes one escape sequence (without its escape characters) and appends
// the result. Returns false when the sequence is unknown or malformed, so
// the caller keeps it verbatim.
bool DecodeSequence(std::string_view seq, const Delimiters& d, const UnescapeOptions& options,
                    std::string* out) {
  if (seq.size() == 1) {
    switch (seq[0]) {
      case 'F':
        out->push_back(d.field);
        return true;
      case 'S':
        out->push_back(d.component);
        return true;
      case 'T':
        out->push_back(d.subcomponent);
        return true;
      case 'R':
        out->push_back(d.repetition);
        return true;
      case 'E':
        out->push_back(d.escape);
        return true;
      case 'P':
        if (d.truncation == '\0') return false;
        out->push_back(d.truncation);
        return true;
      case 'H':
      case 'N':
        if (options.keep_highlighting) return false;
        return true;
      default:
        return false;
    }
  }
  if (seq.size() >= 3 && seq[0] == 'X' && (seq.size() - 1) % 2 == 0) {
    std::string bytes;
    for (std::size_t i = 1; i < seq.size(); i += 2) {
      int hi = HexValue(seq[i]);
      int lo = HexValue(seq[i + 1]);
      if (hi < 0 || lo < 0) return false;
      bytes.push_back(static_cast<char>(hi * 16 + lo));
    }
    // CR LF, a lone CR and a lone LF all mean a line break in a value.
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      if (bytes[i] == '\r') {
        out->push_back('\n');
        if (i + 1 < bytes.size() && bytes[i + 1] == '\n') ++i;
      } else {
        out->push_back(bytes[i]);
      }
    }
    return true;
  }
  if (seq.size() >= 3 && seq[0] == '.') {
    std::string_view command = seq.substr(1, 2);
    std::string_view rest = seq.substr(3);
    if (command == "br" && rest.empty()) {
      out->push_back('\n');
      return true;
    }
    if (command == "fi" || command == "nf" || command == "ce") {
      return rest.empty();
    }
    if (command == "sp") {
      int n = FormattingCount(rest, 1);
      if (n < 0) return false;
      out->append(static_cast<std::size_t>(n), '\n');
      return true;
    }
    if (command == "in" || command == "ti" || command == "sk") {
      int n = FormattingCount(rest, 0);
      if (n < 0) return false;
      out->append(static_cast<std::size_t>(n), ' ');
      return true;
    }
    return false;
  }
  // \Cxxyy\ and \Mxxyyzz\ (ISO 2022 switching) and \Z..\ (local) are passed
  // through: the bytes around them are already UTF-8, and dropping them
  // would hide from a reader that the sender switched character sets.
  return false;
}

}  // namespace

void UnescapeTo(std::string_view encoded, const Delimiters& d, const UnescapeOptions& options,
                std::string* out) {
  std::size_t i = 0;
  const std::size_t n = encoded.size();
  while (i < n) {
    std::size_t esc = encoded.find(d.escape, i);
    if (esc == std::string_view::npos) {
      out->append(encoded.substr(i));
      return;
    }
    out->append(encoded.substr(i, esc - i));
    std::size_t close = encoded.find(d.escape, esc + 1);
    if (close == std::string_view::npos) {
      // An escape character that is never closed is data.
      out->append(encoded.substr(esc));
      return;
    }
    std::string_view seq = encoded.substr(esc + 1, close - esc - 1);
    if (seq.empty() || !DecodeSequence(seq, d, options, out)) {
      out->append(encoded.substr(esc, close - esc + 1));
    }
    i = close + 1;
  }
}

void EscapeTo(std::string_view text, const Delimiters& d, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->reserve(out->size() + text.size());
  for (char c : text) {
    char name = 0;
    if (c == d.escape) {
      name = 'E';
    } else if (c == d.field) {
      name = 'F';
    } else if (c == d.component) {
      name = 'S';
    } else if (c == d.subcomponent) {
      name = 'T';
    } else if (c == d.repetition) {
      name = 'R';
    } else if (d.truncation != '\0' && c == d.truncation) {
      name = 'P';
    }
    if (name != 0) {
      out->push_back(d.escape);
      out->push_back(name);
      out->push_back(d.escape);
    } else if (c == '\n') {
      out->push_back(d.escape);
      out->append(".br");
      out->push_back(d.escape);
    } else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
      out->push_back(d.escape);
      out->push_back('X');
      out->push_back(kHex[(static_cast<unsigned char>(c) >> 4) & 0xF]);
      out->push_back(kHex[static_cast<unsigned char>(c) & 0xF]);
      out->push_back(d.escape);
    } else {
      out->push_back(c);
    }
  }
}

std::string Escape(std::string_view text, const Delimiters& delimiters) {
  std::string out;
  EscapeTo(text, delimiters, &out);
  return out;
}

void TranscodeTo(std::string_view encoded, const Delimiters& from, const Delimiters& to,
                 std::string* out) {
  std::size_t i = 0;
  const std::size_t n = encoded.size();
  while (i < n) {
    std::size_t esc = encoded.find(from.escape, i);
    std::size_t data_end = esc == std::string_view::npos ? n : esc;
    EscapeTo(encoded.substr(i, data_end - i), to, out);
    if (esc == std::string_view::npos) return;
    std::size_t close = encoded.find(from.escape, esc + 1);
    if (close == std::string_view::npos) {
      EscapeTo(encoded.substr(esc), to, out);
      return;
    }
    std::string_view seq = encoded.substr(esc + 1, close - esc - 1);
    // A delimiter escape stands for a character of `from`; that character is
    // what the value holds, so it is escaped again only if `to` needs it.
    char literal = 0;
    if (seq == "F") literal = from.field;
    if (seq == "S") literal = from.component;
    if (seq == "T") literal = from.subcomponent;
    if (seq == "R") literal = from.repetition;
    if (seq == "E") literal = from.escape;
    if (seq == "P" && from.truncation != '\0') literal = from.truncation;
    if (literal != 0) {
      EscapeTo(std::string_view(&literal, 1), to, out);
    } else {
      // Formatting, hex and charset sequences keep their meaning; only their
      // escape characters change.
      out->push_back(to.escape);
      out->append(seq);
      out->push_back(to.escape);
    }
    i = close + 1;
  }
}

}  // namespace bridge::hl7
