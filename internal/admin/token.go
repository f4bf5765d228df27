package admin

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TokenFile is the file in the data directory that holds the admin API's
// bearer token when none is configured.
const TokenFile = "admin.token"

// TokenPath is the token file of the data directory dir.
func TokenPath(dir string) string { return filepath.Join(dir, TokenFile) }

// ErrNoTokenFile means the data directory holds no token file.
var ErrNoTokenFile = errors.New("admin: no " + TokenFile + " in the data directory")

// LoadOrCreateToken returns the token kept in the data directory dir,
// generating one (256 random bits, hex, mode 0600) when there is none. The
// file is written whole (temporary file, sync, rename), so a crash never
// leaves a partial token.
func LoadOrCreateToken(dir string) (string, error) {
	tok, err := ReadToken(dir)
	if !errors.Is(err, ErrNoTokenFile) {
		return tok, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	tok = hex.EncodeToString(b[:])
	path := TokenPath(dir)
	tmp, err := os.CreateTemp(dir, TokenFile+".tmp*")
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		if _, err = tmp.WriteString(tok + "\n"); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return "", fmt.Errorf("admin token %s: %w", path, err)
	}
	return tok, nil
}

// ReadToken returns the token kept in the data directory dir
// (ErrNoTokenFile if there is none). A token file that other users can
// read is refused.
func ReadToken(dir string) (string, error) {
	path := TokenPath(dir)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", ErrNoTokenFile
	}
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("admin token %s is accessible to other users (mode %04o): chmod 600 it, or delete it to have a new one generated", path, st.Mode().Perm())
	}
	b := make([]byte, 1024)
	n, _ := f.Read(b)
	tok := strings.TrimSpace(string(b[:n]))
	if tok == "" {
		return "", fmt.Errorf("admin token %s is empty: delete it to have a new one generated", path)
	}
	return tok, nil
}
