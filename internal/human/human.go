// Package human formats numbers for people, the same way in every natter
// client (the command line and the terminal UI).
package human

import "fmt"

// Size is a byte count for people: "512 bytes", "1.5 KiB", "2.9 MiB",
// "1.0 GiB".
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
