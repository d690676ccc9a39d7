package trust

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// MaxKeysFile bounds the size of a trusted-keys file.
const MaxKeysFile = 1 << 20

// Files names the files that hold the trusted keys; an empty name is none.
type Files struct {
	// OpenPGP is a file of armored OpenPGP public keys (--trusted-keys):
	// one or more blocks as gpg --export --armor writes them.
	OpenPGP string
	// SSH is an allowed_signers file (--trusted-ssh-signers).
	SSH string
}

// Keys are the trusted keys, read from their files again whenever they are
// used, so that an edited or rotated file (a Kubernetes secret) takes effect
// without a restart; a file is parsed again only when its content changed.
// Keys is safe for concurrent use.
type Keys struct {
	files Files
	mu    sync.Mutex
	cur   *keySet // last parsed, with the digest of what it was parsed from
}

// keySet is the content of the key files at one time.
type keySet struct {
	digest  string // of the files' content (and names)
	openpgp openpgp.EntityList
	ssh     []AllowedSigner
	err     error // the files could not be read or parsed
}

// Load reads and parses the key files, and returns an error naming the file
// (and, for a mistake in it, the line) when one cannot be used: for a
// command to refuse to start. At least one file must be named.
func Load(files Files) (*Keys, error) {
	if files.OpenPGP == "" && files.SSH == "" {
		return nil, errors.New("trusted keys: no file named")
	}
	k := &Keys{files: files}
	set := k.current()
	if set.err != nil {
		return nil, set.err
	}
	if len(set.openpgp) == 0 && len(set.ssh) == 0 {
		return nil, fmt.Errorf("trusted keys: %s holds no key", k.names())
	}
	return k, nil
}

// Files returns the files the keys are read from.
func (k *Keys) Files() Files { return k.files }

func (k *Keys) names() string {
	var names []string
	for _, f := range []string{k.files.OpenPGP, k.files.SSH} {
		if f != "" {
			names = append(names, f)
		}
	}
	return strings.Join(names, " and ")
}

// Digest returns a digest of the key files as they are now (re-read): it
// changes when a file's content does, or when a file becomes unreadable.
func (k *Keys) Digest() string { return k.current().digest }

// current reads the files and returns the key set they hold, parsing them
// only when their content differs from the last time.
func (k *Keys) current() *keySet {
	h := sha256.New()
	contents := make([][]byte, 2)
	var readErr error
	for i, name := range []string{k.files.OpenPGP, k.files.SSH} {
		fmt.Fprintf(h, "%d:%s\x00", i, name)
		if name == "" {
			continue
		}
		data, err := readKeysFile(name)
		if err != nil {
			readErr = errors.Join(readErr, err)
			fmt.Fprintf(h, "error:%v\x00", err)
			continue
		}
		contents[i] = data
		fmt.Fprintf(h, "%d\x00", len(data))
		h.Write(data)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur != nil && k.cur.digest == digest {
		return k.cur
	}
	set := &keySet{digest: digest, err: readErr}
	if readErr == nil {
		var errs []error
		if k.files.OpenPGP != "" {
			list, err := ParseOpenPGPKeys(k.files.OpenPGP, contents[0])
			errs = append(errs, err)
			set.openpgp = list
		}
		if k.files.SSH != "" {
			signers, err := ParseAllowedSigners(k.files.SSH, contents[1])
			errs = append(errs, err)
			set.ssh = signers
		}
		set.err = errors.Join(errs...)
	}
	k.cur = set
	return set
}

// readKeysFile reads a key file of at most MaxKeysFile bytes.
func readKeysFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("trusted keys: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("trusted keys: read %s: %w", name, err)
	}
	if len(data) > MaxKeysFile {
		return nil, fmt.Errorf("trusted keys: %s is larger than %d bytes", name, MaxKeysFile)
	}
	return data, nil
}

// The first lines of armored OpenPGP key blocks.
const (
	armorBegin   = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
	armorPrivate = "-----BEGIN PGP PRIVATE KEY BLOCK-----"
)

// ParseOpenPGPKeys parses every armored public key block in data (blocks
// may be concatenated, as several gpg --export --armor outputs are). A block
// that does not parse, a private key, or no block at all is a *ParseError
// naming file and the block's first line.
func ParseOpenPGPKeys(file string, data []byte) (openpgp.EntityList, error) {
	var (
		list openpgp.EntityList
		errs ParseErrors
	)
	text := string(data)
	if i := strings.Index(text, armorPrivate); i >= 0 {
		line := 1 + strings.Count(text[:i], "\n")
		return nil, ParseErrors{{File: file, Line: line, Msg: "a private key: give public keys only (gpg --export --armor KEY), and keep the private one secret"}}
	}
	offset := 0
	for {
		i := strings.Index(text[offset:], armorBegin)
		if i < 0 {
			break
		}
		start := offset + i
		line := 1 + strings.Count(text[:start], "\n")
		next := strings.Index(text[start+len(armorBegin):], armorBegin)
		end := len(text)
		if next >= 0 {
			end = start + len(armorBegin) + next
		}
		offset = end
		block, err := readArmoredKeyRing(text[start:end])
		switch {
		case err != nil:
			errs = append(errs, &ParseError{File: file, Line: line, Msg: "the public key block does not parse: " + err.Error()})
		case len(block) == 0:
			errs = append(errs, &ParseError{File: file, Line: line, Msg: "the public key block holds no key"})
		}
		for _, e := range block {
			if e.PrivateKey != nil {
				errs = append(errs, &ParseError{File: file, Line: line, Msg: "the block holds a private key: give public keys only (gpg --export --armor KEY)"})
				break
			}
		}
		if len(errs) == maxParseErrors {
			break
		}
		list = append(list, block...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(list) == 0 {
		return nil, ParseErrors{{File: file, Line: 1, Msg: "no armored public key (" + armorBegin + "): export one with gpg --export --armor KEY"}}
	}
	return list, nil
}

// readArmoredKeyRing reads one armored key block; a panic in the OpenPGP
// library is an error, not a crash.
func readArmoredKeyRing(block string) (list openpgp.EntityList, err error) {
	defer func() {
		if p := recover(); p != nil {
			list, err = nil, fmt.Errorf("the block crashed the OpenPGP parser: %v", p)
		}
	}()
	return openpgp.ReadArmoredKeyRing(strings.NewReader(block))
}
