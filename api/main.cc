// lab-bridge: the composition root. Parses the command line, builds the
// objects each command needs, and runs it. Nothing else builds objects.
#include <pthread.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/strings/numbers.h"

#include "api/apis.h"
#include "api/cli/convert_command.h"
#include "api/cli/parse_command.h"
#include "api/cli/send_command.h"
#include "api/cli/token_command.h"
#include "api/config.h"
#include "api/http/mllp_metrics.h"
#include "api/mllp_handler.h"
#include "api/service/event_bus.h"
#include "api/service/ingest.h"
#include "api/service/lis_endpoints.h"
#include "api/service/metrics.h"
#include "api/service/order_dispatcher.h"
#include "api/service/retention.h"
#include "mllp/server.h"
#include "storage/store.h"

namespace {

using bridge::api::Config;

std::shared_ptr<spdlog::logger> MakeLogger(const std::string& level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("lab-bridge", sink);
  // One line per event, UTC, key=value fields.
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  logger->set_level(level == "debug"     ? spdlog::level::debug
                    : level == "warning" ? spdlog::level::warn
                    : level == "error"   ? spdlog::level::err
                                         : spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

std::string Text(const absl::Status& status) {
  return std::string(status.message().data(), status.message().size());
}

// Reads configuration; prints the one-line reason and returns nullopt on error.
std::optional<Config> LoadOrExplain(const char* command) {
  absl::StatusOr<Config> config = bridge::api::LoadConfig(bridge::api::EnvironmentLookup());
  if (!config.ok()) {
    std::cerr << "lab-bridge " << command << ": configuration: " << Text(config.status()) << "\n";
    return std::nullopt;
  }
  return *std::move(config);
}

std::unique_ptr<bridge::storage::Store> OpenOrExplain(const Config& config, const char* command) {
  absl::StatusOr<std::unique_ptr<bridge::storage::Store>> store =
      bridge::storage::OpenStore(config.store);
  if (!store.ok()) {
    std::cerr << "lab-bridge " << command << ": DATABASE_URL "
              << bridge::storage::MaskDatabaseUrl(config.store.database_url) << ": "
              << Text(store.status()) << "\n";
    return nullptr;
  }
  return *std::move(store);
}

int RunServe(const std::string& port_file) {
  // SIGTERM/SIGINT are taken by sigwait below; block them before any thread
  // starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);  // reload lis_endpoints.json
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::optional<Config> config = LoadOrExplain("serve");
  if (!config) return 1;
  bridge::api::TuneAllocatorForServing();
  std::shared_ptr<spdlog::logger> logger = MakeLogger(config->log_level);
  config->mllp.log = [logger](bridge::mllp::LogLevel level, std::string_view line) {
    using L = bridge::mllp::LogLevel;
    logger->log(level == L::kDebug     ? spdlog::level::debug
                : level == L::kInfo    ? spdlog::level::info
                : level == L::kWarning ? spdlog::level::warn
                                       : spdlog::level::err,
                "event=mllp {}", line);
  };

  std::unique_ptr<bridge::storage::Store> store = OpenOrExplain(*config, "serve");
  if (!store) return 1;
  if (absl::StatusOr<std::string> durability = store->Durability(); durability.ok()) {
    logger->info("event=storage durability=\"{}\"", *durability);
  } else {
    logger->warn("event=storage durability_unknown=\"{}\"", Text(durability.status()));
  }

  // Orders out: the laboratories of lis_endpoints.json. A missing file at
  // the default path means none yet (orders wait, pending); a bad file stops
  // the start.
  const bridge::api::service::LisEndpointDefaults endpoint_defaults{
      .ack_timeout = std::chrono::seconds(config->ack_timeout_seconds),
      .max_attempts = config->retry_max_attempts};
  auto load_endpoints = [&] {
    return bridge::api::service::LoadLisEndpoints(config->lis_endpoints_file, endpoint_defaults,
                                                  !config->lis_endpoints_file_set);
  };
  absl::StatusOr<bridge::api::service::LisEndpoints> endpoints = load_endpoints();
  if (!endpoints.ok()) {
    std::cerr << "lab-bridge serve: LIS_ENDPOINTS_FILE: " << Text(endpoints.status()) << "\n";
    return 1;
  }
  const std::size_t endpoint_count = endpoints->endpoints.size();
  // The same laboratories' mapping settings for the results they send back;
  // replaced as a whole when SIGHUP reloads the file.
  struct Senders {
    std::mutex mutex;
    std::shared_ptr<const bridge::api::service::LisEndpoints> endpoints;
    std::shared_ptr<const bridge::api::service::LisEndpoints> Current() {
      std::lock_guard<std::mutex> lock(mutex);
      return endpoints;
    }
  };
  auto senders = std::make_shared<Senders>();
  senders->endpoints = std::make_shared<const bridge::api::service::LisEndpoints>(*endpoints);
  // On PostgreSQL the dispatcher writes over connections of its own, so its
  // commits run beside the APIs' and the inbound ones instead of queueing
  // behind them; SQLite has one writer whatever the connections.
  std::unique_ptr<bridge::storage::Store> dispatch_store;
  if (config->store.database_url.rfind("postgres", 0) == 0) {
    dispatch_store = OpenOrExplain(*config, "serve");
    if (!dispatch_store) return 1;
  }
  absl::StatusOr<std::unique_ptr<bridge::api::service::OrderDispatcher>> made_dispatcher =
      bridge::api::service::OrderDispatcher::Create(
          dispatch_store ? *dispatch_store : *store, *std::move(endpoints),
          {.sending_application = config->identity.sending_application,
           .sending_facility = config->identity.sending_facility,
           .logger = logger});
  if (!made_dispatcher.ok()) {
    std::cerr << "lab-bridge serve: LIS_ENDPOINTS_FILE " << config->lis_endpoints_file << ": "
              << Text(made_dispatcher.status()) << "\n";
    return 1;
  }
  bridge::api::service::OrderDispatcher* dispatcher = made_dispatcher->get();

  bridge::api::service::EventBus bus;
  bridge::api::service::Ingest ingest(
      *store, bus,
      {.sending_application = config->identity.sending_application,
       .sending_facility = config->identity.sending_facility,
       .critical_flags = config->critical_flags,
       .logger = logger,
       .sender_settings =
           [senders](std::string_view application, std::string_view facility) {
             return senders->Current()->SenderSettingsFor(application, facility);
           },
       .authorize_sender =
           [senders](std::string_view application, std::string_view facility,
                     const bridge::api::service::IngestPeer& peer) {
             return senders->Current()->AuthorizeSender(
                 application, facility, peer.certificate_subject, peer.certificate_names);
           }});
  // Counted by the MLLP handler, served by /metrics (StartApis).
  bridge::api::service::Metrics metrics;
  bridge::api::MllpHandler handler(ingest, config->worker_threads, config->mllp.max_frame_bytes,
                                   &metrics);

  absl::StatusOr<std::unique_ptr<bridge::mllp::Server>> server =
      bridge::mllp::Server::Start(config->mllp, handler);
  if (!server.ok()) {
    std::cerr << "lab-bridge serve: MLLP listener " << config->mllp.listen_host << ":"
              << config->mllp.port << ": " << Text(server.status()) << "\n";
    return 1;
  }
  const unsigned port = (*server)->port();
  bridge::api::ApisOptions apis_options;
  apis_options.metrics = &metrics;
  bridge::mllp::Server* mllp_server = server->get();
  apis_options.extra_metrics = [mllp_server, dispatcher] {
    return bridge::api::http::MllpMetricsText(mllp_server->stats()) + dispatcher->MetricsText();
  };
  apis_options.lis_endpoint = bridge::api::service::kUnroutedEndpoint;
  apis_options.route_order = [dispatcher](const std::vector<std::string>& test_codes) {
    return dispatcher->Route(test_codes);
  };
  apis_options.orders_changed = [dispatcher] { dispatcher->Wake(); };
  absl::StatusOr<std::unique_ptr<bridge::api::Apis>> apis =
      bridge::api::StartApis(*config, *store, &bus, apis_options);
  if (!apis.ok()) {
    std::cerr << "lab-bridge serve: APIs (HTTP " << config->http_listen_host << ":"
              << config->http_port << ", gRPC " << config->grpc_port << "): " << Text(apis.status())
              << "\n";
    (*server)->Stop();
    handler.Shutdown();
    return 1;
  }
  if (!(*apis)->initial_admin_token().empty()) {
    // Shown once, on the terminal of whoever started the first run; only its
    // hash is kept in the tokens file.
    std::cerr << "lab-bridge serve: no API token existed; created token \"admin\" with every "
                 "role (shown once, store it now):\n  "
              << (*apis)->initial_admin_token() << "\n";
  }
  dispatcher->Start();
  logger->info("event=orders lis_endpoints_file={} endpoints={}", config->lis_endpoints_file,
               endpoint_count);
  logger->info("event=start mllp_port={} http_port={} grpc_port={} {}", port, (*apis)->http_port(),
               (*apis)->grpc_port(), bridge::api::DescribeConfig(*config));
  if (!port_file.empty()) {
    // Written whole, then renamed, once every listener accepts: a reader that
    // sees the file can connect, and never sees a partial line.
    const std::string tmp = port_file + ".tmp";
    {
      std::ofstream out(tmp);
      out << "mllp=" << port << "\nhttp=" << (*apis)->http_port()
          << "\ngrpc=" << (*apis)->grpc_port() << "\n";
    }
    std::filesystem::rename(tmp, port_file);
  }

  bridge::api::service::RetentionJob retention(
      *store, {.retention = absl::Hours(24) * config->audit_retention_days, .logger = logger});
  retention.Start();

  int signal_number = 0;
  for (;;) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) {
      break;
    }
    absl::StatusOr<bridge::api::service::LisEndpoints> fresh = load_endpoints();
    const std::size_t count = fresh.ok() ? fresh->endpoints.size() : 0;
    std::shared_ptr<const bridge::api::service::LisEndpoints> copy =
        fresh.ok() ? std::make_shared<const bridge::api::service::LisEndpoints>(*fresh) : nullptr;
    absl::Status reloaded = fresh.ok() ? dispatcher->Reload(*std::move(fresh)) : fresh.status();
    if (reloaded.ok()) {
      {
        std::lock_guard<std::mutex> lock(senders->mutex);
        senders->endpoints = std::move(copy);
      }
      logger->info("event=lis_endpoints_reloaded file={} endpoints={}", config->lis_endpoints_file,
                   count);
    } else {
      logger->error("event=lis_endpoints_reload_failed error=\"{}\" action=kept_previous",
                    Text(reloaded));
    }
  }
  logger->info("event=stopping signal={}", signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  retention.Stop();
  (*apis)->Stop();
  dispatcher->Stop();  // the exchanges in flight finish; the rest waits in the outbox
  (*server)->Stop();   // stop accepting, finish the messages in hand
  handler.Shutdown();
  const bridge::mllp::ServerStats& stats = (*server)->stats();
  logger->info("event=stopped frames={} replies={} connections={}", stats.frames_received.load(),
               stats.replies_sent.load(), stats.connections_accepted.load());
  return 0;
}

int RunMigrate() {
  std::optional<Config> config = LoadOrExplain("migrate");
  if (!config) return 1;
  std::unique_ptr<bridge::storage::Store> store = OpenOrExplain(*config, "migrate");
  if (!store) return 1;
  absl::StatusOr<int> applied = store->Migrate();
  if (!applied.ok()) {
    std::cerr << "lab-bridge migrate: " << Text(applied.status()) << "\n";
    return 1;
  }
  std::cout << "schema is current (" << bridge::storage::MaskDatabaseUrl(config->store.database_url)
            << ")\n";
  return 0;
}

int RunAuditVerify() {
  std::optional<Config> config = LoadOrExplain("audit verify");
  if (!config) return 1;
  std::unique_ptr<bridge::storage::Store> store = OpenOrExplain(*config, "audit verify");
  if (!store) return 1;
  absl::StatusOr<int64_t> rows = store->VerifyAuditChain();
  if (!rows.ok()) {
    std::cout << "audit chain BROKEN: " << Text(rows.status()) << "\n";
    return 1;
  }
  std::cout << "audit chain verified: " << *rows << " rows\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lab-bridge: HL7 v2 lab results in, orders out, FHIR R4 and REST for the PMS"};
  app.require_subcommand(1);

  CLI::App* parse = app.add_subcommand("parse", "Parse HL7 v2 messages (structure as JSON)");
  std::vector<std::string> parse_files;
  bool parse_ack = false;
  bool parse_check = false;
  parse->add_option("FILE", parse_files, "Message file, or - for standard input")->required();
  parse->add_flag("--ack", parse_ack, "Print the ACK/NAK lab-bridge would answer");
  parse->add_flag("--check", parse_check,
                  "Check every message in the files (batches, captures, exports)");

  CLI::App* serve = app.add_subcommand("serve", "Receive results over MLLP (config from env)");
  std::string port_file;
  serve->add_option("--port-file", port_file,
                    "Once listening, write mllp=PORT, http=PORT, grpc=PORT lines here");

  CLI::App* send = app.add_subcommand("send", "MLLP client: send messages, print each ACK");
  bridge::api::SendCommandOptions send_options;
  int send_timeout_seconds = 30;
  std::string send_host = "127.0.0.1";
  int send_port = 2575;
  send->add_option("--host", send_host, "LIS or lab-bridge host");
  send->add_option("--port", send_port, "MLLP port")->check(CLI::Range(1, 65535));
  send->add_flag("--tls", send_options.client.tls.enabled, "Use TLS (1.2 minimum)");
  send->add_option("--ca", send_options.client.tls.ca_file, "CA bundle for the server certificate");
  send->add_option("--cert", send_options.client.tls.cert_file, "Client certificate (mutual TLS)");
  send->add_option("--key", send_options.client.tls.key_file, "Client key (mutual TLS)");
  send->add_option("--server-name", send_options.client.tls.server_name,
                   "Name to verify in the server certificate (default: --host)");
  CLI::Option* send_timeout =
      send->add_option("--timeout", send_timeout_seconds,
                       "Seconds to wait for each ACK (default: ACK_TIMEOUT_SECONDS, else 30)")
          ->check(CLI::Range(1, 86400));
  send->add_option("FILE", send_options.files, "Message files (batches allowed), - for stdin")
      ->required();

  CLI::App* convert = app.add_subcommand("convert", "ORU^R01 -> FHIR R4 Bundle (JSON) on stdout");
  std::string convert_file;
  std::string convert_to = "fhir";
  bridge::api::ConvertCommandOptions convert_options;
  convert->add_option("FILE", convert_file, "Message file, or - for standard input")->required();
  convert->add_flag("--report", convert_options.report,
                    "Also list on stderr every segment/field the mapping did not carry");
  convert
      ->add_option("--to", convert_to,
                   "fhir (ORU^R01 in) or hl7 (FHIR ServiceRequest in, ORM^O01 out)")
      ->check(CLI::IsMember({"fhir", "hl7"}));

  app.add_subcommand("migrate", "Apply schema migrations (DATABASE_URL) and exit");
  CLI::App* audit = app.add_subcommand("audit", "Audit trail tools");
  audit->require_subcommand(1);
  CLI::App* audit_verify = audit->add_subcommand("verify", "Check the audit hash chain");

  CLI::App* token = app.add_subcommand("token", "API bearer tokens (API_TOKENS_FILE)");
  token->require_subcommand(1);
  CLI::App* token_create = token->add_subcommand("create", "Create a token; prints it once");
  std::string token_name;
  std::string token_roles;
  token_create->add_option("--name", token_name, "Who or what uses it")->required();
  token_create
      ->add_option("--roles", token_roles,
                   "Comma-separated: results:read,orders:write,... (see docs/API.md)")
      ->required();
  CLI::App* token_list = token->add_subcommand("list", "Name, roles and creation time of each");
  CLI::App* token_revoke = token->add_subcommand("revoke", "Delete a token by name");
  std::string revoke_name;
  token_revoke->add_option("NAME", revoke_name, "Token name")->required();

  CLI11_PARSE(app, argc, argv);

  if (parse->parsed()) {
    if (parse_check) return bridge::api::RunParseCheck(parse_files, std::cout, std::cerr);
    if (parse_files.size() != 1) {
      std::cerr << "lab-bridge parse: expected one FILE (use --check for several)\n";
      return 2;
    }
    if (parse_ack) {
      return bridge::api::RunParseAck(parse_files[0], {}, std::cout, std::cerr);
    }
    return bridge::api::RunParse(parse_files[0], std::cout, std::cerr);
  }
  if (serve->parsed()) return RunServe(port_file);
  if (send->parsed()) {
    send_options.client.host = send_host;
    send_options.client.port = static_cast<std::uint16_t>(send_port);
    if (send_timeout->count() == 0) {
      // The same variable serve reads; --timeout overrides it.
      if (const char* env = std::getenv("ACK_TIMEOUT_SECONDS"); env != nullptr) {
        if (!absl::SimpleAtoi(env, &send_timeout_seconds) || send_timeout_seconds < 1 ||
            send_timeout_seconds > 86400) {
          std::cerr << "lab-bridge send: ACK_TIMEOUT_SECONDS: expected 1-86400 seconds, got \""
                    << env << "\"\n";
          return 2;
        }
      }
    }
    send_options.client.ack_timeout = std::chrono::seconds(send_timeout_seconds);
    return bridge::api::RunSend(send_options, std::cout, std::cerr);
  }
  if (convert->parsed()) {
    if (convert_to == "hl7") {
      if (convert_options.report) {
        std::cerr << "lab-bridge convert: --report applies to ORU^R01 -> FHIR only\n";
        return 2;
      }
      std::optional<Config> config = LoadOrExplain("convert");
      if (!config) return 1;
      convert_options.sending_application = config->identity.sending_application;
      convert_options.sending_facility = config->identity.sending_facility;
      return bridge::api::RunConvertToHl7(convert_file, convert_options, std::cout, std::cerr);
    }
    return bridge::api::RunConvertToFhir(convert_file, convert_options, std::cout, std::cerr);
  }
  if (token->parsed()) {
    std::optional<Config> config = LoadOrExplain("token");
    if (!config) return 1;
    if (token_create->parsed()) {
      return bridge::api::RunTokenCreate(config->api_tokens_file, token_name, token_roles,
                                         std::cout, std::cerr);
    }
    if (token_list->parsed()) {
      return bridge::api::RunTokenList(config->api_tokens_file, std::cout, std::cerr);
    }
    return bridge::api::RunTokenRevoke(config->api_tokens_file, revoke_name, std::cout, std::cerr);
  }
  if (app.got_subcommand("migrate")) return RunMigrate();
  if (audit_verify->parsed()) return RunAuditVerify();
  return 0;
}
