#include "api/mllp_handler.h"

#include <algorithm>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

namespace bridge::api {

class MllpHandler::Pool {
 public:
  explicit Pool(int threads) : pool_(static_cast<std::size_t>(std::max(1, threads))) {}
  boost::asio::thread_pool& get() { return pool_; }

 private:
  boost::asio::thread_pool pool_;
};

MllpHandler::MllpHandler(service::Ingest& ingest, int worker_threads, std::size_t max_frame_bytes)
    : ingest_(ingest),
      max_frame_bytes_(max_frame_bytes),
      pool_(std::make_unique<Pool>(worker_threads)) {}

MllpHandler::~MllpHandler() { Shutdown(); }

void MllpHandler::Shutdown() { pool_->get().join(); }

void MllpHandler::HandleFrame(std::string payload, const mllp::PeerInfo& peer, mllp::ReplyFn done) {
  service::IngestPeer who{.source_ip = peer.address,
                          .certificate_subject = peer.certificate_subject,
                          .connection_id = peer.connection_id};
  boost::asio::post(pool_->get(), [this, payload = std::move(payload), who = std::move(who),
                                   done = std::move(done)]() mutable {
    service::IngestResult result = ingest_.Handle(payload, who);
    done(std::move(result.reply));
  });
}

void MllpHandler::HandleOversizeFrame(std::string prefix, const mllp::PeerInfo& peer,
                                      mllp::ReplyFn done) {
  (void)peer;
  // Pure and quick (no storage): answered on the calling thread.
  done(ingest_.OversizeNak(prefix, max_frame_bytes_));
}

}  // namespace bridge::api
