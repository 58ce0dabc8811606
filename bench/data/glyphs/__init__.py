"""The embedded glyphs data set: `source` (the registered data source), `build` (renders the
set into a cache), `classes`, `render`, `jitter`, `rules`, `splits` (see docs/glyphs.md)."""
