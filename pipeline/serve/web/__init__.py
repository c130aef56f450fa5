"""The story page of the read API: HTML and SVG rendered on the server, nothing fetched from
elsewhere (no CDN, no script), so it works offline and under a strict Content-Security-Policy."""
