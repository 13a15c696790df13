// api/http/web_ui.h
//
// WebUi: serves the lab dashboard (api/web, embedded in the binary) at /lab.
// `/lab` and `/lab/` are the page; `/lab/<file>` its scripts and styles. The
// page itself carries no data: it signs in with an API token and calls the
// REST paths and GET /api/events like any other client.
//
//   WebUi web;
//   if (WebUi::Owns(request.path)) return web.Handle(request);
//
// Every answer carries a Content-Security-Policy that allows only this
// origin (no inline script, no framing), nosniff and no-referrer; files are
// revalidated by ETag (304 when unchanged), so an upgrade shows at once.
//
// Thread-safe (no state).
#pragma once

#include <string_view>

#include "api/http/server.h"

namespace bridge::api::http {

class WebUi {
 public:
  static bool Owns(std::string_view path);
  HttpResponse Handle(const HttpRequest& request) const;
};

}  // namespace bridge::api::http
