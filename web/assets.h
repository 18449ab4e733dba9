/* assets.h — the status page (web/) compiled into the binary.
 *
 * assets.c is generated at build time from web/index.html, web/app.js and
 * web/style.css by web/embed.cmake:
 *   cmake -DOUT=assets.c -DIN_DIR=web -P web/embed.cmake
 * Each array holds the file's bytes followed by one NUL that `len` leaves out.
 */
#ifndef FORQ_METRICS_ASSETS_H
#define FORQ_METRICS_ASSETS_H

#include <stddef.h>

extern const unsigned char asset_index_html[];
extern const size_t asset_index_html_len;
extern const char asset_index_html_type[];

extern const unsigned char asset_app_js[];
extern const size_t asset_app_js_len;
extern const char asset_app_js_type[];

extern const unsigned char asset_style_css[];
extern const size_t asset_style_css_len;
extern const char asset_style_css_type[];

/* The same three, by URL path ("/index.html", "/app.js", "/style.css"). */
struct web_asset {
	const char *path;
	const char *type;
	const unsigned char *data;
	size_t len;
};
extern const struct web_asset web_assets[];
extern const unsigned web_assets_count;

#endif
