package server

import (
	"regexp"
	"strings"
)

var (
	// htmlTag matches a start tag, attributes and all.
	htmlTag = regexp.MustCompile(`<[a-zA-Z][^>]*>`)
	// srcHref matches a src or href attribute with a double-quoted value
	// (not data-src: the name must follow white space).
	srcHref = regexp.MustCompile(`(\s(?:src|href)=")([^"]*)(")`)
	// moduleTag matches what makes a tag load an ES module.
	moduleTag = regexp.MustCompile(`(?i)\stype="module"|\srel="modulepreload"`)
)

// rewriteIndex returns the page with each src="NAME" and href="NAME"
// (also ./NAME, /NAME) that names an asset turned into the asset's
// immutable /h/HASH/NAME path, so that the page loads exactly the assets
// natterd serves beside it, each cached for good.
//
// Left alone: references to what is never served under /h/ (the service
// worker, the manifest, the page itself: their paths are part of what
// they mean, such as a service worker's scope or a manifest's start_url),
// anything not in the FS (external URLs, fragments), and ES module
// scripts (type="module", rel="modulepreload"). Modules import each other
// by relative names, which from /h/HASH/app.js would resolve under that
// HASH; and a browser keeps one instance of a module per URL, so two
// entry points under different hashes would each get their own copy of
// the modules they share. Modules therefore stay at their plain paths,
// revalidated by ETag.
//
// The page's own hash is taken after the rewrite, so it changes whenever
// the hash of an asset it names does.
func rewriteIndex(page []byte, assets map[string]*asset) []byte {
	return htmlTag.ReplaceAllFunc(page, func(tag []byte) []byte {
		if moduleTag.Match(tag) {
			return tag
		}
		return srcHref.ReplaceAllFunc(tag, func(attr []byte) []byte {
			m := srcHref.FindSubmatch(attr)
			ref := string(m[2])
			name := strings.TrimPrefix(strings.TrimPrefix(ref, "./"), "/")
			a := assets[name]
			if a == nil || a.noCache || strings.HasPrefix(ref, "//") {
				return attr
			}
			return []byte(string(m[1]) + "/h/" + a.short() + "/" + a.name + string(m[3]))
		})
	})
}
