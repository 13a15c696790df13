// mllp/frame_encoder.h
//
// Frame(payload) wraps a payload in MLLP's block characters: <VT> payload
// <FS><CR>. Pure functions, no I/O; safe to call from any thread.
//
//   std::string wire = bridge::mllp::Frame("MSH|^~\\&|...");
//
// MLLP cannot carry a payload that itself contains <VT> or <FS>: check with
// IsFrameable() first when the payload comes from outside (the Client does).
#pragma once

#include <string>
#include <string_view>

namespace bridge::mllp {

inline constexpr char kStartBlock = '\x0b';      // <VT>
inline constexpr char kEndBlock = '\x1c';        // <FS>
inline constexpr char kCarriageReturn = '\x0d';  // <CR>

// Returns <VT> payload <FS><CR>.
std::string Frame(std::string_view payload);

// Appends <VT> payload <FS><CR> to `*out`.
void AppendFrame(std::string_view payload, std::string* out);

// True when `payload` holds neither <VT> nor <FS>, i.e. a receiver will see
// exactly `payload` again after decoding.
bool IsFrameable(std::string_view payload);

}  // namespace bridge::mllp
