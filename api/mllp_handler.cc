#include "api/mllp_handler.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
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

MllpHandler::MllpHandler(service::Ingest& ingest, int worker_threads, std::size_t max_frame_bytes,
                         service::Metrics* metrics)
    : ingest_(ingest),
      max_frame_bytes_(max_frame_bytes),
      metrics_(metrics),
      pool_(std::make_unique<Pool>(worker_threads)) {}

MllpHandler::~MllpHandler() { Shutdown(); }

void MllpHandler::Shutdown() { pool_->get().join(); }

void MllpHandler::HandleFrame(std::string payload, const mllp::PeerInfo& peer, mllp::ReplyFn done) {
  service::IngestPeer who{.source_ip = peer.address,
                          .certificate_subject = peer.certificate_subject,
                          .certificate_names = peer.certificate_names,
                          .connection_id = peer.connection_id};
  const absl::Time received = absl::Now();
  boost::asio::post(pool_->get(), [this, payload = std::move(payload), who = std::move(who),
                                   done = std::move(done), received]() mutable {
    service::IngestResult result = ingest_.Handle(payload, who);
    if (metrics_ != nullptr) {
      using service::Metrics;
      metrics_->CountMessage(Metrics::Direction::kIn, result.message_type,
                             result.reply.has_value() ? result.ack_code : "");
      if (result.stored && !result.duplicate) {
        metrics_->CountResultsStored(static_cast<int>(result.result_ids.size()));
      }
      if (result.control_id_reused) {
        metrics_->CountControlIdReuse();
      }
      if (result.reply.has_value()) {
        metrics_->ObserveAckLatency(absl::Now() - received);
      }
    }
    done(std::move(result.reply));
  });
}

void MllpHandler::HandleOversizeFrame(std::string prefix, const mllp::PeerInfo& peer,
                                      mllp::ReplyFn done) {
  (void)peer;
  // Pure and quick (no storage): answered on the calling thread.
  std::string nak = ingest_.OversizeNak(prefix, max_frame_bytes_);
  if (metrics_ != nullptr) {
    // Counted by its ACK code only: the message type is in a part never read.
    const std::size_t msa = nak.find("\rMSA|");
    metrics_->CountMessage(service::Metrics::Direction::kIn, "",
                           msa == std::string::npos ? "" : nak.substr(msa + 5, 2));
  }
  done(std::move(nak));
}

}  // namespace bridge::api
