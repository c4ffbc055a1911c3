//go:build js

package webapp

import (
	"slices"
	"testing"
)

// TestWords: the search index's words are letters and digits, lower case,
// accents removed, each once.
func TestWords(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"Hello, World!", []string{"hello", "world"}},
		{"Crème brûlée à Noël", []string{"creme", "brulee", "a", "noel"}},
		{"it's 2026-12-02", []string{"it", "s", "2026", "12", "02"}},
		{"echo echo ECHO", []string{"echo"}},
		{"   ", nil},
		{"Ελληνικά και русский", []string{"ελληνικα", "και", "русскии"}},
		{"file report.pdf", []string{"file", "report", "pdf"}},
	} {
		if got := words(tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("words(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

// TestQRSVG: the safety number's QR code is an SVG document with modules.
func TestQRSVG(t *testing.T) {
	svg, err := qrSVG("12345 67890 12345 67890 12345 67890 12345 67890 12345 67890 12345 67890")
	if err != nil {
		t.Fatal(err)
	}
	if len(svg) < 1000 || svg[:4] != "<svg" || svg[len(svg)-6:] != "</svg>" {
		t.Fatalf("qr svg: %.80q…", svg)
	}
}
