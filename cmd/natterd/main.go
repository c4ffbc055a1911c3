// Command natterd is natter's server. See internal/server.
package main

import (
	"os"

	"github.com/natterim/natter/internal/server"
)

func main() { os.Exit(server.Main()) }
