// `lab-bridge send`: an MLLP client on the command line.
//
//   send --host H --port P [--tls --ca FILE --cert FILE --key FILE
//        --server-name N] [--timeout SECONDS] FILE...
//
// Each FILE holds one message, a batch (FHS/BHS) or an export with one
// message after another (CR, LF or CRLF separated; "-" reads standard
// input). Messages are sent in order on one connection, each waiting for the
// ACK whose MSA-2 is its MSH-10. One line per message on `out`:
//
//   <control id> <ACK code> [<error text>]
//
// with code "-" and the reason when no ACK came (timeout, connection
// refused, no MSH-10). Returns 0 only when every message got AA or CA, 1
// otherwise, 2 for unreadable files or bad options.
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <vector>

#include "mllp/options.h"

namespace bridge::api {

struct SendCommandOptions {
  mllp::ClientOptions client;
  std::vector<std::string> files;
};

int RunSend(const SendCommandOptions& options, std::ostream& out, std::ostream& err);

}  // namespace bridge::api
