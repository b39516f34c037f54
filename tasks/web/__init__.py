"""Reading the news where it is published: URLs made canonical and checked (`urls`,
`safety`), fetched politely (`http`, `robots`), feeds and sitemaps expanded into
article URLs (`feeds`, `discovery`), what was taken remembered between runs (`state`)
and every response archived as WARC (`archive`)."""
