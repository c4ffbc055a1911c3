package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"
)

// errNoPassword is returned when no password source is available.
var errNoPassword = errors.New("no password given: set NATTER_PASSWORD, use --password-stdin, or run natter in a terminal to be asked")

// password returns the password for signup or login, from (in order)
// --password-stdin, NATTER_PASSWORD, or a prompt on the terminal without
// echo. confirm asks twice at the prompt (for signup).
func (r *runner) password(fromStdin, confirm bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(r.stdio.In).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("--password-stdin: stdin held no password")
		}
		return pw, nil
	}
	if pw := r.getenv("NATTER_PASSWORD"); pw != "" {
		return pw, nil
	}
	fd, ok := terminalFd(r.stdio.In)
	if !ok {
		return "", errNoPassword
	}
	pw, err := prompt(fd, r.stdio.Err, "Password: ")
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	if confirm {
		again, err := prompt(fd, r.stdio.Err, "Password again: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the passwords do not match")
		}
	}
	return pw, nil
}

// terminalFd returns the file descriptor of in if it is a terminal.
func terminalFd(in io.Reader) (int, bool) {
	f, ok := in.(interface{ Fd() uintptr })
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// prompt asks for a secret on the terminal fd with echo off.
func prompt(fd int, w io.Writer, msg string) (string, error) {
	fmt.Fprint(w, msg)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(w)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}
