package disk

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// spoolExt ends the name of every spool file.
const spoolExt = ".jsonl"

// Spool is a folder where a process leaves lines (the archive records it
// could not put) for the next one: each Save writes a new file, mode
// 0600, durably (WriteDurable) and under a name of its own, so that two
// processes of one device never overwrite each other's.
type Spool struct {
	Dir string
}

// Load calls line with every line of every spool file in the folder and
// returns the files it read; a file it could not read is skipped and its
// error returned in errs (a folder that does not exist holds nothing). A
// line over 4 MiB ends its file's reading. line must not keep the slice
// it is given.
func (s Spool) Load(line func([]byte)) (files []string, errs []error) {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		return nil, errs
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), spoolExt) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(s.Dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			line(sc.Bytes())
		}
		files = append(files, path)
	}
	return files, errs
}

// Save writes data (lines) to a new spool file.
func (s Spool) Save(data []byte) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	return WriteDurable(s.Dir, "archive-"+rand.Text()+spoolExt, data)
}

// Remove deletes files that Load returned: their lines are taken care of.
func (Spool) Remove(files []string) {
	for _, f := range files {
		os.Remove(f)
	}
}
