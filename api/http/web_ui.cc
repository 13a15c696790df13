#include "api/http/web_ui.h"

#include <string>

#include "api/web/web_assets.h"

namespace bridge::api::http {
namespace {

constexpr std::string_view kPrefix = "/lab";

void AddSecurityHeaders(HttpResponse* r) {
  r->headers.emplace_back("Content-Security-Policy",
                          "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'");
  r->headers.emplace_back("X-Content-Type-Options", "nosniff");
  r->headers.emplace_back("Referrer-Policy", "no-referrer");
  r->headers.emplace_back("X-Frame-Options", "DENY");
}

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  AddSecurityHeaders(&r);
  return r;
}

}  // namespace

bool WebUi::Owns(std::string_view path) {
  return path == kPrefix || path.substr(0, kPrefix.size() + 1) == "/lab/";
}

HttpResponse WebUi::Handle(const HttpRequest& request) const {
  if (request.method != "GET" && request.method != "HEAD") {
    HttpResponse r = Text(405, "Method not allowed: the dashboard's files are read with GET.\n");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  std::string_view name = std::string_view(request.path).substr(kPrefix.size());
  if (!name.empty()) {
    name.remove_prefix(1);  // the '/'
  }
  if (name.empty()) {
    name = "index.html";
  }
  const web::Asset* asset = web::FindAsset(name);
  if (asset == nullptr) {
    return Text(404, "Not found: " + request.path + "\nThe lab dashboard is at /lab\n");
  }
  const std::string etag = "\"" + std::string(asset->sha256.substr(0, 32)) + "\"";
  HttpResponse r;
  AddSecurityHeaders(&r);
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("Cache-Control", "no-cache");
  if (request.Header("if-none-match") == etag) {
    r.status = 304;
    r.content_type.clear();
    return r;
  }
  r.content_type = std::string(asset->content_type);
  r.body = std::string(asset->body);
  return r;
}

}  // namespace bridge::api::http
