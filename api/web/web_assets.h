// api/web/web_assets.h
//
// The lab dashboard's files (api/web/*.html, *.css, *.js, *.svg), embedded
// into the binary at build time by embed_web_assets.cmake, so lab-bridge
// serves /lab with nothing else installed and no internet access.
//
//   const bridge::api::web::Asset* a = bridge::api::web::FindAsset("app.js");
//   if (a) -> a->body, a->content_type, a->sha256 (for ETag)
#pragma once

#include <span>
#include <string_view>

namespace bridge::api::web {

struct Asset {
  std::string_view path;  // relative to api/web: "index.html", "app.js"
  std::string_view content_type;
  std::string_view body;
  std::string_view sha256;  // hex, of body
};

// Every embedded file, sorted by path.
std::span<const Asset> Assets();
// nullptr when there is no such file.
const Asset* FindAsset(std::string_view path);

}  // namespace bridge::api::web
