// api/mllp_handler.h
//
// MllpHandler adapts mllp::MessageHandler to service::Ingest: each frame is
// handed to a worker pool (storage blocks; I/O threads must not), Ingest runs
// there, and the ACK goes back through the server's ReplyFn. An oversize
// frame gets a NAK (AE 104, MSA-2 from the frame's first bytes when
// readable); the server then closes the connection.
//
//   service::Ingest ingest(*store, bus, options);
//   MllpHandler handler(ingest, /*worker_threads=*/4);
//   auto server = mllp::Server::Start(config.mllp, handler);
//   ...
//   (*server)->Stop();   // first: finishes the messages in hand
//   handler.Shutdown();  // then: joins the workers
//
// With a service::Metrics, each answered frame is counted there (type, ACK
// code, results stored) with its ACK latency: from the frame's arrival here
// to the ACK handed back to the server, which writes it at once.
//
// Thread-safety: HandleFrame/HandleOversizeFrame are called concurrently by
// the server. Shutdown (also run by the destructor) waits for queued work.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "api/service/ingest.h"
#include "api/service/metrics.h"
#include "mllp/handler.h"

namespace bridge::api {

class MllpHandler : public mllp::MessageHandler {
 public:
  // `ingest` (and `metrics`, when given) are borrowed and must outlive this
  // object. `max_frame_bytes` is only quoted in the oversize NAK's text.
  MllpHandler(service::Ingest& ingest, int worker_threads, std::size_t max_frame_bytes,
              service::Metrics* metrics = nullptr);
  ~MllpHandler() override;
  MllpHandler(const MllpHandler&) = delete;
  MllpHandler& operator=(const MllpHandler&) = delete;

  void HandleFrame(std::string payload, const mllp::PeerInfo& peer, mllp::ReplyFn done) override;
  void HandleOversizeFrame(std::string prefix, const mllp::PeerInfo& peer,
                           mllp::ReplyFn done) override;

  // Runs the work already queued, then joins the workers. Idempotent.
  void Shutdown();

 private:
  class Pool;
  service::Ingest& ingest_;
  std::size_t max_frame_bytes_;
  service::Metrics* metrics_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace bridge::api
