// The inbox needs no script of its own: htmx polls and swaps its list, marks items read, and
// core/web/static/ui.js refreshes the navigation badge after requests from inside the
// [data-refresh-badges] element. Kept (loaded on every page by web_assets) for later needs.
